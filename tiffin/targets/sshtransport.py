"""SFTP over paramiko's own SSH transport: the way when OpenSSH's ssh is not at hand (see
sshpipe for the other). Host key checked against ~/.ssh/known_hosts, keys offered in turn."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence

import paramiko

from tiffin.errors import TargetError
from tiffin.targets.sftpbits import _FAILURES, _reason
from tiffin.targets.sshkeys import changed_host, known_host_keys, unknown_host

WINDOW = 16 << 20  # SSH channel window: bytes in flight before the peer must acknowledge
PACKET = 64 << 10  # an SFTP request of 32 KiB plus its header fits in one packet
AEAD_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


class TransportLink:
    """paramiko's transport under an SFTP session."""

    def __init__(self, transport: paramiko.Transport) -> None:
        self.transport = transport

    def alive(self) -> bool:
        return self.transport.is_active()

    def why_broken(self) -> str | None:
        return None  # the exception paramiko raised says it

    def openssh(self) -> bool:
        """Return True if the server announces itself as OpenSSH."""
        return "OpenSSH" in (self.transport.remote_version or "")

    def close(self, abort: bool = False) -> None:
        self.transport.close()


def connect(
    host: str, port: int, where: str, user: str, keys: Sequence[paramiko.PKey], timeout: float
) -> tuple[paramiko.SFTPClient, TransportLink]:
    """Given where to log in and with which keys, return an SFTP session and its transport.
    Raise TargetError, one sentence, if the server cannot be reached, its host key is not the
    one known_hosts holds, or it refuses every key."""
    known = known_host_keys(host, port)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise TargetError(f"cannot reach the SSH server at {where}: {_reason(exc)}") from None
    transport = paramiko.Transport(sock, default_window_size=WINDOW, default_max_packet_size=PACKET)
    transport.banner_timeout = transport.handshake_timeout = timeout
    transport.auth_timeout = transport.channel_timeout = timeout
    opts = transport.get_security_options()
    # AES-GCM first: one OpenSSL call a packet seals and authenticates it, where paramiko's
    # default aes128-ctr adds an HMAC: 1.3-1.5 x the throughput at two thirds of the CPU
    # (scp's pace on loopback). A server without it gets paramiko's usual order.
    opts.ciphers = [c for c in AEAD_CIPHERS if c in opts.ciphers] + [
        c for c in opts.ciphers if c not in AEAD_CIPHERS
    ]
    if known:
        # Ask for a host key of a type we hold, as ssh does, so the comparison is fair.
        rsa = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")
        wanted = [t for t in opts.key_types if t in known or (t in rsa and "ssh-rsa" in known)]
        opts.key_types = wanted + [t for t in opts.key_types if t not in wanted]
    try:
        transport.start_client(timeout=timeout)
    except _FAILURES as exc:
        transport.close()
        raise TargetError(f"cannot reach the SSH server at {where}: {_reason(exc)}") from None
    try:
        _check_host_key(host, port, where, known, transport.get_remote_server_key())
        _authenticate(transport, where, user, keys)
        sftp = paramiko.SFTPClient.from_transport(
            transport, window_size=WINDOW, max_packet_size=PACKET
        )
        if sftp is None:
            raise TargetError(f"the SSH server at {where} offers no SFTP")
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(timeout)
    except BaseException:
        transport.close()
        raise
    return sftp, TransportLink(transport)


def _check_host_key(
    host: str, port: int, where: str, known: Mapping[str, paramiko.PKey] | None, key: paramiko.PKey
) -> None:
    if not known:
        raise TargetError(unknown_host(host, port, where))
    if known.get(key.get_name()) != key:
        raise TargetError(changed_host(host, port, where))


def _authenticate(
    transport: paramiko.Transport, where: str, user: str, keys: Sequence[paramiko.PKey]
) -> None:
    for key in keys:
        try:
            transport.auth_publickey(user, key)
        except paramiko.AuthenticationException:
            continue
        except _FAILURES as exc:
            raise TargetError(
                f"the connection to the SSH server at {where} broke while logging in: "
                f"{_reason(exc)}"
            ) from None
        if transport.is_authenticated():
            return
    raise TargetError(f"the SSH server at {where} refused the key(s) for {user}")

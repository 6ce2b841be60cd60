"""A folder on an SSH server over SFTP: pipelined NAME.partial, size check, no-overwrite rename."""

from __future__ import annotations

import io
import logging
import posixpath
import socket
import stat as statmod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

import paramiko
from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY

from tiffin.catalog.naming import PARTIAL_SUFFIX
from tiffin.engine.streams import BLOCK, Reader
from tiffin.errors import AlreadyExists, NotFound, TargetError
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets.base import Entry, Stored
from tiffin.targets.sftpbits import _FAILURES, _entry, _quiet_prefetch, _reason
from tiffin.targets.sshkeys import known_host_keys, load_keys
from tiffin.urls import host_text

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger("tiffin")

WINDOW = 16 << 20  # SSH channel window: bytes in flight before the peer must acknowledge
PACKET = 64 << 10  # an SFTP request of 32 KiB plus its header fits in one packet
# Bytes per SFTP write: paramiko's 32 KiB as it comes, 255 KiB to OpenSSH's sftp-server, which
# takes messages up to 256 KiB (sftp-common.h SFTP_MAX_MSG_LENGTH): 1.6 x the throughput at
# two thirds of the CPU, on a par with scp. A server that is not OpenSSH keeps 32 KiB.
OPENSSH_REQUEST = 255 << 10
AEAD_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
READ_AHEAD = 8 << 20  # bytes a reader prefetches; its memory stays bounded by this


class SFTPTarget:
    """A folder on an SSH server. Construction connects: see load_keys and known_host_keys."""

    def __init__(self, url: TargetURL, options: TargetOptions) -> None:
        self.host = url.host
        self.port = url.port or 22
        self.where = f"{host_text(self.host)}:{self.port}"
        self.user = url.user or ""
        self.timeout = options.timeout
        self.mode = options.mode
        self._keys = load_keys(options)
        self._hung = False  # a request timed out: no second wait to clean up
        if not log.isEnabledFor(logging.DEBUG):  # its thread logs tracebacks: --debug only
            logging.getLogger("paramiko").setLevel(logging.CRITICAL + 1)
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None
        sftp = self._client()
        with self._errors("finding the login's home folder"):
            home = sftp.normalize(".")
        self.dir = posixpath.normpath(posixpath.join(home, url.path)) if url.path else home
        self._dir_made = False

    def _connect(self) -> paramiko.SFTPClient:
        known = known_host_keys(self.host, self.port)
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise TargetError(
                f"cannot reach the SSH server at {self.where}: {_reason(exc)}"
            ) from None
        transport = paramiko.Transport(
            sock, default_window_size=WINDOW, default_max_packet_size=PACKET
        )
        self._transport = transport
        transport.banner_timeout = transport.handshake_timeout = self.timeout
        transport.auth_timeout = transport.channel_timeout = self.timeout
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
            transport.start_client(timeout=self.timeout)
        except _FAILURES as exc:
            transport.close()
            raise TargetError(
                f"cannot reach the SSH server at {self.where}: {_reason(exc)}"
            ) from None
        try:
            self._check_host_key(known, transport.get_remote_server_key())
            self._authenticate(transport)
            sftp = paramiko.SFTPClient.from_transport(
                transport, window_size=WINDOW, max_packet_size=PACKET
            )
            if sftp is None:
                raise TargetError(f"the SSH server at {self.where} offers no SFTP")
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(self.timeout)
        except BaseException:
            transport.close()
            raise
        return sftp

    def _check_host_key(
        self, known: Mapping[str, paramiko.PKey] | None, key: paramiko.PKey
    ) -> None:
        entry = f"[{self.host}]:{self.port}" if self.port != 22 else self.host
        if not known:
            raise TargetError(
                f"the SSH host key of {self.where} is not known: check it, then add it with: "
                f"ssh-keyscan -p {self.port} {self.host} >> ~/.ssh/known_hosts"
            )
        if known.get(key.get_name()) != key:
            raise TargetError(
                f"the SSH host key of {self.where} has CHANGED since it was stored in "
                "~/.ssh/known_hosts (someone may be intercepting the connection): check the "
                f"new key with the server's administrator, then fix known_hosts with: "
                f"ssh-keygen -R '{entry}'"
            )

    def _authenticate(self, transport: paramiko.Transport) -> None:
        for key in self._keys:
            try:
                transport.auth_publickey(self.user, key)
            except paramiko.AuthenticationException:
                continue
            except _FAILURES as exc:
                raise TargetError(
                    f"the connection to the SSH server at {self.where} broke while logging "
                    f"in: {_reason(exc)}"
                ) from None
            if transport.is_authenticated():
                return
        raise TargetError(f"the SSH server at {self.where} refused the key(s) for {self.user}")

    def _client(self) -> paramiko.SFTPClient:
        """Return the SFTP session, connecting again if the last one broke."""
        if self._sftp is None or self._transport is None or not self._transport.is_active():
            self.close()
            self._sftp = self._connect()
        return self._sftp

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn SFTP refusals and broken connections into one TargetError sentence."""
        try:
            yield
        except _FAILURES as exc:
            alive = self._transport is not None and self._transport.is_active()
            self._hung = self._hung or isinstance(exc, TimeoutError)
            if alive and type(exc) in (OSError, FileNotFoundError, PermissionError):
                raise TargetError(
                    f"the SSH server at {self.where} refused {doing}: {_reason(exc)}"
                ) from None
            self.close()  # a late answer would be taken for the next request's: start afresh
            raise TargetError(
                f"the connection to the SSH server at {self.where} broke while {doing}: "
                + _reason(exc)
            ) from None

    def _path(self, name: str) -> str:
        return posixpath.join(self.dir, name)

    def _exists(self, path: str) -> bool:
        try:
            self._client().stat(path)
        except FileNotFoundError:
            return False
        return True

    def _ensure_dir(self) -> None:
        if self._dir_made:
            return
        sftp = self._client()
        with self._errors(f"creating the folder {self.dir}"):
            prefix = "/" if self.dir.startswith("/") else ""
            for part in filter(None, self.dir.split("/")):
                prefix = posixpath.join(prefix, part)
                if not self._exists(prefix):
                    try:
                        sftp.mkdir(prefix, 0o700)
                    except OSError:
                        if not self._exists(prefix):  # else another run made it meanwhile
                            raise
        self._dir_made = True

    def _openssh(self) -> bool:
        """Return True if the server announces itself as OpenSSH."""
        return self._transport is not None and "OpenSSH" in (self._transport.remote_version or "")

    def put(self, name: str, reader: Reader, replace: bool = False) -> Stored:
        final = self._path(name)
        temp = final + PARTIAL_SUFFIX
        self._hung = False
        self._ensure_dir()
        sftp = self._client()
        with self._errors(f"checking for {name}"):
            if not replace and self._exists(final):
                raise AlreadyExists(f"{final} exists already; tiffin never overwrites a backup")
            if self._exists(temp):
                raise AlreadyExists(f"{temp} exists: is another run writing {name}?")
            out = sftp.open(temp, "wbx")
        written = 0
        try:
            with self._errors(f"storing {name}"):
                out.chmod(self.mode)
                out.set_pipelined(True)
                if self._openssh():
                    out.MAX_REQUEST_SIZE = OPENSSH_REQUEST
            while data := reader.read(BLOCK):
                with self._errors(f"storing {name}"):
                    out.write(data)
                written += len(data)
            with self._errors(f"storing {name}"):
                out.close()  # waits for every pipelined write to be acknowledged
                stored = sftp.stat(temp).st_size
            if stored != written:
                raise TargetError(f"{temp} holds {stored} bytes, {written} were written")
            with self._errors(f"publishing {name}"):
                try:
                    if replace:
                        self._rename_over(temp, final)
                    else:  # plain SFTP rename refuses an existing target (posix-rename not)
                        sftp.rename(temp, final)
                except OSError:
                    if replace:
                        raise
                    if self._exists(final):
                        raise AlreadyExists(f"{final} appeared while writing") from None
                    raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):  # it may have struck mid-request: the
                self.close()  # session is out of step, and closing the file would wait on it
            with suppress(*_FAILURES):
                out.close()
            full = self._free_space() if isinstance(exc, TargetError) else None
            self._discard(temp)
            if full is not None and full < BLOCK:  # SFTP's "Failure" does not say why
                raise TargetError(
                    f"the SSH server's disk is full at {self.where} ({full} bytes free in "
                    f"{self.dir})"
                ) from None
            raise
        return Stored(written)

    def _rename_over(self, temp: str, final: str) -> None:
        """Rename TEMP to FINAL, replacing it: by OpenSSH's posix-rename where the server has
        it (atomic), else by removing FINAL first."""
        sftp = self._client()
        try:
            sftp.posix_rename(temp, final)
        except OSError:
            if not self._exists(temp):
                raise
            with suppress(FileNotFoundError):
                sftp.remove(final)
            sftp.rename(temp, final)

    def _free_space(self) -> int | None:
        """Return the bytes free for us in the folder (OpenSSH's statvfs extension), or None
        if the server cannot tell."""
        if self._hung or self._sftp is None:
            return None
        try:
            request = getattr(self._sftp, "_request")  # noqa: B009 (private, not in the stubs)
            kind, msg = request(CMD_EXTENDED, "statvfs@openssh.com", self.dir)
            if kind != CMD_EXTENDED_REPLY:
                return None
            _bsize, frsize, _blocks, _bfree, bavail = (msg.get_int64() for _ in range(5))
        except (*_FAILURES, AttributeError):
            return None
        return int(frsize * bavail)

    def _discard(self, temp: str) -> None:
        if self._hung:  # waiting for a hung server again would double the wait: prune removes it
            log.warning("%s on %s is left for prune: the server does not answer", temp, self.where)
            return
        try:
            self._client().remove(temp)
        except FileNotFoundError:
            pass
        except (TargetError, *_FAILURES) as exc:
            log.warning("could not remove %s on %s: %s", temp, self.where, exc)

    def open(self, name: str) -> Reader:
        path = self._path(name)
        sftp = self._client()
        with self._errors(f"reading {name}"):
            try:
                size = sftp.stat(path).st_size or 0
                handle = sftp.open(path, "rb")
            except FileNotFoundError:
                raise NotFound(f"no backup named {name} in {self.dir} on {self.where}") from None
        _quiet_prefetch(handle)
        return io.BufferedReader(_Download(self, handle, name, size), BLOCK)

    def list(self) -> list[Entry]:
        entries: list[Entry] = []
        with self._errors(f"listing {self.dir}"):
            try:
                attrs = self._client().listdir_attr(self.dir)
            except FileNotFoundError:
                return entries
        for a in attrs:
            if a.st_mode is None or statmod.S_ISREG(a.st_mode):
                partial = a.filename.endswith(PARTIAL_SUFFIX)
                fname = a.filename[: -len(PARTIAL_SUFFIX)] if partial else a.filename
                entries.append(_entry(fname, a, partial))
        return entries

    def stat(self, name: str) -> Entry | None:
        with self._errors(f"looking for {name}"):
            try:
                a = self._client().stat(self._path(name))
            except FileNotFoundError:
                return None
        return _entry(name, a)

    def remove(self, name: str) -> None:
        with self._errors(f"removing {name}"), suppress(FileNotFoundError):
            self._client().remove(self._path(name))

    def close(self) -> None:
        sftp, self._sftp = self._sftp, None
        transport, self._transport = self._transport, None
        if sftp is not None:
            sftp.close()
        if transport is not None:
            transport.close()


class _Download(io.RawIOBase):
    """An SFTP file as a reader that keeps READ_AHEAD bytes of requests in flight, and
    raises TargetError when fewer bytes arrive than stat reported."""

    def __init__(self, target: SFTPTarget, handle: paramiko.SFTPFile, name: str, size: int) -> None:
        super().__init__()
        self.target, self.handle, self.name, self.size = target, handle, name, size
        self._asked = 0  # bytes requested so far
        self._count = 0
        self._blocks: Iterator[bytes] = iter(())
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _next_block(self) -> bytes:
        block = next(self._blocks, None)
        if block is None:
            if self._asked >= self.size:
                return b""
            end = min(self.size, self._asked + READ_AHEAD)
            chunks = [(o, min(BLOCK, end - o)) for o in range(self._asked, end, BLOCK)]
            self._asked = end
            self._blocks = iter(self.handle.readv(chunks))
            block = next(self._blocks, b"")
        return block

    def readinto(self, b: WriteableBuffer) -> int:
        out = memoryview(b)
        if not self._buf:
            with self.target._errors(f"reading {self.name}"):
                block = self._next_block()
            if not block:
                if self._count != self.size:
                    raise TargetError(
                        f"only {self._count} of the {self.size} bytes of {self.name} arrived "
                        f"from {self.target.where}"
                    )
                return 0
            self._count += len(block)
            self._buf = memoryview(block)
        n = min(len(out), len(self._buf))
        out[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            with suppress(*_FAILURES):
                self.handle.close()
        super().close()

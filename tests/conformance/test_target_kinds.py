"""What one kind alone does: how FTP, FTPS and SSH targets find their credentials, check whom
they talk to and place their folder. Not parametrized over KINDS: each belongs to one kind."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conformance.kinds import TIMEOUT, stranger_key
from tests.servers.certs import make_certs
from tests.servers.ftp import FTPServer
from tests.servers.sshd import SSHServer
from tiffin.errors import TargetError, UsageError
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets.ftp import FTPTarget
from tiffin.targets.sftp import SFTPTarget
from tiffin.targets.sshpipe import SSHPipe
from tiffin.targets.sshtransport import TransportLink
from tiffin.targets.where import parse_target, parse_url

NAME = "db_2026-11-28_05:10:19_UTC.sql.gz"
OPTIONS = TargetOptions(timeout=TIMEOUT)


def ssh_dir() -> Path:
    path = Path(os.environ["HOME"], ".ssh")
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def sftp_url(server: SSHServer, path: str = "") -> TargetURL:
    return TargetURL("sftp", server.host, server.port, server.user, path=path)


def key_options(server: SSHServer) -> TargetOptions:
    return TargetOptions(ssh_key=str(server.client_key), timeout=TIMEOUT)


def test_sftp_unknown_host_key_is_refused_with_the_ssh_keyscan_fix(sshd: SSHServer) -> None:
    ssh_dir()
    with pytest.raises(TargetError) as caught:
        SFTPTarget(sftp_url(sshd), key_options(sshd))
    assert str(caught.value) == (
        f"the SSH host key of 127.0.0.1:{sshd.port} is not known: check it, then add it with: "
        f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> ~/.ssh/known_hosts"
    )


def test_sftp_changed_host_key_is_refused_and_says_so(sshd: SSHServer) -> None:
    impostor = Ed25519PrivateKey.generate().public_key()
    line = impostor.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    (ssh_dir() / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {line.decode()}\n")
    with pytest.raises(TargetError) as caught:
        SFTPTarget(sftp_url(sshd), key_options(sshd))
    message = str(caught.value)
    assert "CHANGED" in message and f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in message


def test_sftp_refused_key_names_host_and_user(sshd: SSHServer) -> None:
    sshd.write_known_hosts(ssh_dir() / "known_hosts")
    wrong = TargetOptions(ssh_key=stranger_key(ssh_dir() / "stranger"), timeout=TIMEOUT)
    with pytest.raises(TargetError) as caught:
        SFTPTarget(sftp_url(sshd), wrong)
    assert str(caught.value) == (
        f"the SSH server at 127.0.0.1:{sshd.port} refused the key(s) for {sshd.user}"
    )


def test_sftp_uses_the_default_key_in_home_when_no_key_is_given(sshd: SSHServer) -> None:
    sshd.write_known_hosts(ssh_dir() / "known_hosts")
    shutil.copy(sshd.client_key, ssh_dir() / "id_ed25519")
    target = SFTPTarget(sftp_url(sshd, "default-key"), OPTIONS)
    try:
        target.put(NAME, io.BytesIO(b"x"))
        assert target.stat(NAME) is not None
    finally:
        target.remove(NAME)
        target.close()


def test_sftp_uses_the_keys_of_the_ssh_agent(
    sshd: SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sshd.write_known_hosts(ssh_dir() / "known_hosts")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert agent.poll() is None and time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.02)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        subprocess.run(["ssh-add", "-q", str(sshd.client_key)], check=True)
        SFTPTarget(sftp_url(sshd), OPTIONS).close()  # no --ssh-key, no ~/.ssh/id_*
    finally:
        agent.terminate()
        agent.wait(10)


def test_sftp_without_any_key_is_refused_before_connecting(sshd: SSHServer) -> None:
    sshd.write_known_hosts(ssh_dir() / "known_hosts")
    with pytest.raises(UsageError, match="no SSH key found"):
        SFTPTarget(sftp_url(sshd), OPTIONS)


def test_sftp_relative_path_is_under_home_and_absolute_path_is_not(sshd: SSHServer) -> None:
    sshd.write_known_hosts(ssh_dir() / "known_hosts")
    relative = parse_target("ssh", f"{sshd.user}@{sshd.host}:{sshd.port}", "rel/dir")
    absolute = parse_url(f"sftp://{sshd.user}@{sshd.host}:{sshd.port}{sshd.home}/abs")
    at_home = parse_url(f"sftp://{sshd.user}@{sshd.host}:{sshd.port}/~/tilde")
    for url, where in ((relative, "rel/dir"), (absolute, "abs"), (at_home, "tilde")):
        target = SFTPTarget(url, key_options(sshd))
        try:
            target.put(NAME, io.BytesIO(b"abc"))
        finally:
            target.close()
        assert (sshd.home / where / NAME).read_bytes() == b"abc"
        assert (sshd.home / where / NAME).stat().st_mode & 0o777 == 0o600


@pytest.fixture(params=["openssh", "paramiko"])
def client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each SSH client in turn (TIFFIN_SSH_CLIENT), the server's host key known."""
    monkeypatch.setenv("TIFFIN_SSH_CLIENT", request.param)
    sshd: SSHServer = request.getfixturevalue("sshd")
    sshd.write_known_hosts(ssh_dir() / "known_hosts")
    return str(request.param)


def test_sftp_to_openssh_uses_large_writes_and_aes_gcm(sshd: SSHServer, client: str) -> None:
    """What makes the SSH leg as fast as scp: 255 KiB SFTP writes, which OpenSSH's sftp-server
    takes (it says so through limits@openssh.com), and an AEAD cipher (no HMAC a packet),
    through either client; the bytes arrive whole."""
    target = SFTPTarget(sftp_url(sshd, f"gcm-{client}"), key_options(sshd))
    data = os.urandom(3 << 20)
    try:
        target.put(NAME, io.BytesIO(data))
        assert target._request_size == 255 << 10
        link = target._link
        if client == "paramiko":
            assert isinstance(link, TransportLink)
            assert link.transport.local_cipher == "aes128-gcm@openssh.com"
        else:
            assert isinstance(link, SSHPipe)
            argv = link.child.cmd
            assert "Ciphers=aes128-gcm@openssh.com," in " ".join(argv)
    finally:
        target.close()
    assert (sshd.home / f"gcm-{client}" / NAME).read_bytes() == data


def test_sftp_readers_closed_while_reading_ahead_leave_the_session_in_step(
    sshd: SSHServer, client: str
) -> None:
    """Closing a reader sends its close while paramiko's read-ahead thread may still be
    asking for blocks: the two threads' requests must not tangle on the one connection."""
    target = SFTPTarget(sftp_url(sshd, f"ahead-{client}"), key_options(sshd))
    data = os.urandom(12 << 20)
    try:
        target.put(NAME, io.BytesIO(data))
        for _ in range(20):
            reader = target.open(NAME)
            assert reader.read(1) == data[:1]
            reader.close()
        whole = target.open(NAME)
        assert whole.read() == data
        whole.close()
        assert target.stat(NAME) is not None
    finally:
        target.close()


def ftp_url(server: FTPServer, password: str | None, path: str = "") -> TargetURL:
    kind = "ftps" if server.tls else "ftp"
    return TargetURL(kind, server.host, server.port, server.user, password, path)


def test_ftp_without_a_password_is_refused_and_anonymous_never_tried(
    ftp_server: FTPServer,
) -> None:
    with pytest.raises(UsageError, match="no password for the FTP login"):
        FTPTarget(ftp_url(ftp_server, None), OPTIONS)


def test_ftp_password_comes_from_the_environment(
    ftp_server: FTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIFFIN_FTP_PASSWORD", ftp_server.password)
    FTPTarget(ftp_url(ftp_server, None), OPTIONS).close()


def test_ftp_password_comes_from_netrc_by_host(ftp_server: FTPServer) -> None:
    netrc = Path(os.environ["HOME"], ".netrc")
    netrc.write_text(
        f"machine {ftp_server.host} login {ftp_server.user} password {ftp_server.password}\n"
    )
    netrc.chmod(0o600)
    FTPTarget(ftp_url(ftp_server, None), OPTIONS).close()


def test_ftp_relative_path_is_under_the_login_home(ftp_server: FTPServer) -> None:
    url = parse_target(
        "ftp",
        f"{ftp_server.user}:{ftp_server.password}@127.0.0.1:{ftp_server.port}",
        "nested/folder",
    )
    target = FTPTarget(url, OPTIONS)
    try:
        target.put(NAME, io.BytesIO(b"abc"))
    finally:
        target.close()
    assert (ftp_server.root / "nested" / "folder" / NAME).read_bytes() == b"abc"


def test_ftps_server_whose_certificate_no_trusted_ca_signed_is_refused_unless_insecure(
    ftps_server: FTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stranger_ca = make_certs(tmp_path / "other-ca").ca_file
    monkeypatch.setenv("SSL_CERT_FILE", str(stranger_ca))
    url = ftp_url(ftps_server, ftps_server.password, "insecure")
    with pytest.raises(TargetError) as caught:
        FTPTarget(url, OPTIONS)
    message = str(caught.value)
    assert message.startswith("the FTPS server's certificate")
    assert message.endswith("add --insecure only if you trust it")
    target = FTPTarget(url, TargetOptions(timeout=TIMEOUT, insecure=True))
    try:
        target.put(NAME, io.BytesIO(b"x"))
        with target.open(NAME) as reader:
            assert reader.read() == b"x"
    finally:
        target.close()


def test_ftps_refuses_a_server_that_offers_no_tls(ftp_server: FTPServer) -> None:
    url = TargetURL("ftps", ftp_server.host, ftp_server.port, ftp_server.user, ftp_server.password)
    with pytest.raises(TargetError, match="refused TLS"):
        FTPTarget(url, OPTIONS)


def test_ftp_lists_with_nlst_and_size_where_mlsd_is_missing(ftp_server: FTPServer) -> None:
    target = FTPTarget(ftp_url(ftp_server, ftp_server.password, "nlst"), OPTIONS)
    try:
        target._mlsd = False  # as on a server without RFC 3659's MLSD
        target.put(NAME, io.BytesIO(b"abc"))
        target.put("left.partial", io.BytesIO(b"ab"))
        listed = {(e.name, e.size, e.partial) for e in target.list()}
        assert listed == {(NAME, 3, False), ("left", 2, True)}
        assert all(e.mtime for e in target.list())
    finally:
        target.close()

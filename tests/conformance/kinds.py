"""Every target kind the conformance suite runs against, each on its real server.

KINDS maps a kind to a factory: given the pytest request of one test, it returns a Setup
naming a fresh folder (not created yet) on that kind's server, with the options to reach
it. The environment is already scrubbed (see conftest.py): HOME is a fresh empty directory.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.servers.base import Server
from tests.servers.ftp import FTPServer
from tests.servers.ports import free_port
from tests.servers.s3 import S3Server
from tests.servers.sshd import SSHServer
from tiffin.engine.streams import BLOCK
from tiffin.job import TargetOptions, TargetURL

TIMEOUT = 15.0


@dataclass(frozen=True)
class Setup:
    """How one test reaches one kind's server, in a folder of its own."""

    url: TargetURL
    options: TargetOptions
    # The real server: one test stops it mid-upload (the session fixture restarts it).
    server: Server | None = None
    # The same target with wrong credentials, and the secrets no message may show.
    wrong_login: tuple[TargetURL, TargetOptions] | None = None
    secrets: tuple[str, ...] = ()
    # A "multi-part" size spans several of these (a chunk or part size of the kind).
    part_size: int = BLOCK
    # The same target on a port where no server listens ("127.0.0.1:PORT" in its error).
    unreachable: tuple[TargetURL, TargetOptions] | None = None


def _folder() -> str:
    """A fresh folder two levels below the login's home, so creating it takes two mkdirs."""
    return f"conformance-{uuid.uuid4().hex[:10]}/sub"


def local(request: pytest.FixtureRequest) -> Setup:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    return Setup(TargetURL("local", path=str(tmp_path / "backups" / "sub")), TargetOptions())


def _ftp(request: pytest.FixtureRequest, fixture: str) -> Setup:
    server: FTPServer = request.getfixturevalue(fixture)
    if server.ca_file is not None:
        request.getfixturevalue("monkeypatch").setenv("SSL_CERT_FILE", str(server.ca_file))
    kind = "ftps" if server.tls else "ftp"
    url = TargetURL(kind, server.host, server.port, server.user, server.password, _folder())
    wrong = TargetURL(kind, server.host, server.port, server.user, "Wr0ng-pa55", url.path)
    options = TargetOptions(timeout=TIMEOUT)
    nowhere = (replace(url, port=free_port()), options)
    return Setup(
        url, options, server, (wrong, options), (server.password, "Wr0ng-pa55"), unreachable=nowhere
    )


def ftp(request: pytest.FixtureRequest) -> Setup:
    return _ftp(request, "ftp_server")


def ftps(request: pytest.FixtureRequest) -> Setup:
    return _ftp(request, "ftps_server")


def stranger_key(path: Path) -> str:
    """Write a new ed25519 key (OpenSSH format, no passphrase) that no server knows."""
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return str(path)


def sftp(request: pytest.FixtureRequest) -> Setup:
    server: SSHServer = request.getfixturevalue("sshd")
    ssh_dir = Path(os.environ["HOME"], ".ssh")
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    server.write_known_hosts(ssh_dir / "known_hosts")
    url = TargetURL("sftp", server.host, server.port, server.user, path=_folder())
    options = TargetOptions(ssh_key=str(server.client_key), timeout=TIMEOUT)
    wrong = TargetOptions(ssh_key=stranger_key(ssh_dir / "stranger"), timeout=TIMEOUT)
    nowhere = (replace(url, port=free_port()), options)
    return Setup(url, options, server, (url, wrong), unreachable=nowhere)


def sftp_paramiko(request: pytest.FixtureRequest) -> Setup:
    """The same server through paramiko's own transport, the way without OpenSSH's ssh."""
    request.getfixturevalue("monkeypatch").setenv("TIFFIN_SSH_CLIENT", "paramiko")
    return sftp(request)


class _BucketKeeper:
    """The session's S3 server as a test stops and starts it: moto forgets every bucket when
    it stops, so start() makes this test's bucket again."""

    def __init__(self, server: S3Server, bucket: str) -> None:
        self.server, self.bucket = server, bucket

    def start(self) -> _BucketKeeper:
        self.server.start()
        with contextlib.suppress(ClientError):  # it survived: the server was not stopped
            self.server.make_bucket(self.bucket)
        return self

    def __getattr__(self, name: str) -> Any:  # stop, pause, resume, paused, host, port ...
        return getattr(self.server, name)


def _s3(request: pytest.FixtureRequest, kind: str, chunk_size: int, part_size: int) -> Setup:
    server: S3Server = request.getfixturevalue("s3_server")
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    for name, value in server.env().items():  # credentials, endpoint, no metadata probe
        monkeypatch.setenv(name, value)
    bucket = server.make_bucket(f"conformance-{uuid.uuid4().hex[:12]}")
    url = TargetURL(kind, host=bucket, path=_folder())
    options = TargetOptions(endpoint_url=server.endpoint, timeout=TIMEOUT, chunk_size=chunk_size)
    keeper = cast(Server, _BucketKeeper(server, bucket))
    nowhere = (url, replace(options, endpoint_url=f"http://127.0.0.1:{free_port()}"))
    return Setup(
        url, options, keeper, secrets=(server.secret_key,), part_size=part_size, unreachable=nowhere
    )


def s3(request: pytest.FixtureRequest) -> Setup:
    # One object per backup, in multipart parts of 8 MiB (S3Target's first part size).
    return _s3(request, "s3", 4 << 30, 8 << 20)


def s3multi(request: pytest.FixtureRequest) -> Setup:
    # Chunks of 1 MiB: a 2 MiB stream that fails midway has chunks to clean up.
    return _s3(request, "s3multi", 1 << 20, 1 << 20)


KINDS: dict[str, Callable[[pytest.FixtureRequest], Setup]] = {
    "local": local,
    "ftp": ftp,
    "ftps": ftps,
    "sftp": sftp,
    "sftp-paramiko": sftp_paramiko,
    "s3": s3,
    "s3multi": s3multi,
}

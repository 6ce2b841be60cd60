"""A throwaway FTP / explicit-FTPS server (pyftpdlib in a child process)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

from .base import Server
from .certs import CertPaths, make_certs
from .env import scrubbed_environ
from .ports import free_port
from .proc import make_workdir, require_module

__all__ = ["FTPServer"]

MAIN = Path(__file__).with_name("ftpd_main.py")
USER = "ramenbackups"
PASSWORD = "chowmein"


class FTPServer(Server):
    """pyftpdlib on 127.0.0.1:port, one user with write permissions "elradfmwMT".

    ``tls=True``: explicit FTPS (AUTH TLS), TLS required on control and data
    connections, certificate for 127.0.0.1 signed by ``ca_file`` (``certs``, or a
    fresh CA in the workdir). ``root_dir``: serve this directory (e.g. a small
    tmpfs for disk-full tests) instead of a fresh temp dir; it is not deleted.
    """

    name = "ftpd"

    def __init__(
        self,
        tls: bool = False,
        root_dir: str | os.PathLike[str] | None = None,
        certs: CertPaths | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__()
        self.tls = tls
        self.port = port or free_port()
        self.user = USER
        self.password = PASSWORD
        self._own_root = root_dir is None
        self.root: Path = (
            make_workdir("ftproot", mode=0o755) if root_dir is None else Path(root_dir)
        )
        self.root.mkdir(parents=True, exist_ok=True)
        self.certs: CertPaths | None = None
        if tls:
            self.certs = certs or make_certs(self.workdir / "certs")
        self.ca_file: Path | None = self.certs.ca_file if self.certs else None

    def _start(self) -> None:
        require_module("pyftpdlib")
        argv = [sys.executable, str(MAIN), "--host", self.host, "--port", str(self.port)]
        argv += ["--user", self.user, "--password", self.password, "--root", str(self.root)]
        if self.certs is not None:
            require_module("OpenSSL")
            argv += ["--tls", "--certfile", str(self.certs.cert_file)]
            argv += ["--keyfile", str(self.certs.key_file)]
        self._spawn(argv, stop_signal=signal.SIGTERM, cwd=self.workdir, env=scrubbed_environ())
        self._wait_port(timeout=30)

    def close(self) -> None:
        super().close()
        if self._own_root and not os.environ.get("TIFFIN_KEEP_SERVER_DIRS"):
            shutil.rmtree(self.root, ignore_errors=True)

    def clear(self) -> None:
        """Empty the served directory."""
        for entry in self.root.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def url(self, path: str = "") -> str:
        """``ftp://`` (or ``ftps://``) URL of ``path``, without credentials."""
        scheme = "ftps" if self.tls else "ftp"
        return f"{scheme}://{self.host}:{self.port}/{path.lstrip('/')}"

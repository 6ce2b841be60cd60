"""A scratch PostgreSQL server (see tiffin.engine.scratch): initdb and postgres of Debian's
/usr/lib/postgresql/MAJOR/bin, the dump's major version or the oldest newer one."""

from __future__ import annotations

import glob
import os
import re
import signal

from tiffin.engine.scratch.base import ScratchServer, answers
from tiffin.errors import BackupFailed
from tiffin.job import DBConn

SERVER_DIRS = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"
PORT = 5432  # only names the socket file: the server listens on no TCP port


def server_dirs() -> dict[int, str]:
    """Return {major: bin folder} of every PostgreSQL server installed (initdb and postgres)."""
    found: dict[int, str] = {}
    for d in sorted(glob.glob(SERVER_DIRS)):
        m = re.search(r"/(\d+)/bin$", d)
        if m and all(os.access(os.path.join(d, p), os.X_OK) for p in ("initdb", "postgres")):
            found[int(m[1])] = d
    return found


def pick_server(major: int, available: dict[int, str]) -> str:
    """Given the dump's major version and the servers installed, return the bin folder of
    the same major, else of the oldest newer one. Raise BackupFailed naming the package."""
    fit = sorted(v for v in available if v >= major)
    if not fit:
        raise BackupFailed(
            f"a scratch PostgreSQL {major} server (or newer) is needed to load the dump into, "
            f"and none is installed here: install postgresql-{major}"
        )
    return available[fit[0]]


class ScratchPostgres(ScratchServer):
    """postgres with listen_addresses='', its socket in a private folder, and the superuser
    `postgres` logging in over it (trust: only the folder's owner and root can reach it)."""

    kind = "PostgreSQL"
    stop_signal = signal.SIGINT  # fast shutdown

    def __init__(self, major: int) -> None:
        super().__init__()
        self.major = major
        self.package = f"postgresql-{major}"

    @property
    def conn(self) -> DBConn:
        """How psql reaches this server: its socket folder, as the superuser."""
        return DBConn(host=self.path("sock"), port=PORT, user=SUPERUSER)

    def _start(self) -> None:
        bindir = pick_server(self.major, server_dirs())
        data = self.folder("data")
        sock = self.folder("sock")
        self.run(
            (
                os.path.join(bindir, "initdb"),
                "-D",
                data,
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=reject",
                "-N",
            ),
            "initdb",
        )
        settings = {
            "listen_addresses": "",
            "port": str(PORT),
            "unix_socket_directories": sock,
            "unix_socket_permissions": "0700",
            "dynamic_shared_memory_type": "mmap",  # in the data folder, not /dev/shm
            "logging_collector": "off",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "20",
        }
        self.spawn(postgres_argv(bindir, data, settings), "postgres")
        psql = os.path.join(bindir, "psql")
        self.wait_until(lambda: self._answers(psql))

    def _answers(self, psql: str) -> bool:
        if not os.path.exists(os.path.join(self.path("sock"), f".s.PGSQL.{PORT}")):
            return False
        cmd = (
            psql,
            "-X",
            "-w",
            "-q",
            "-A",
            "-t",
            "-h",
            self.path("sock"),
            "-p",
            str(PORT),
            "-U",
            SUPERUSER,
            "-d",
            "postgres",
            "-c",
            "SELECT 1",
        )
        return answers(cmd, "psql")


def postgres_argv(bindir: str, data: str, settings: dict[str, str]) -> list[str]:
    """Given the server's bin folder, its data folder and settings, return the argv that starts
    it with each setting as -c KEY=VALUE."""
    return [os.path.join(bindir, "postgres"), "-D", data] + [
        arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")
    ]

"""A scratch MariaDB server (see tiffin.engine.scratch): mariadbd, found beside the client tools."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable

from tiffin.engine import process
from tiffin.engine.scratch.base import ScratchServer, answers, find_binary
from tiffin.errors import BackupFailed
from tiffin.job import DBConn

SERVER_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin")


class ScratchMariaDB(ScratchServer):
    """mariadbd with --skip-networking, its socket in a private folder, and root (or, when
    tiffin does not run as root, the invoking user) logging in over it by unix_socket.

    With FILL, its data directory is not made by mariadb-install-db: FILL(DATADIR) writes
    it (a physical backup, given to the server's OS user) and returns the server options
    its layout needs; the server then runs with --skip-grant-tables, since its accounts
    are the backed-up server's (anyone reaching its private socket is its administrator)."""

    kind = "MariaDB"
    package = "mariadb-server"

    def __init__(self, fill: Callable[[str], tuple[str, ...]] | None = None) -> None:
        super().__init__()
        self.fill = fill

    def binaries(self) -> tuple[str, str]:
        """Return (mariadb-install-db, mariadbd). Raise BackupFailed naming the package."""
        client = process.which("mariadb", "mysql")
        dirs = [os.path.dirname(client)] if client else []
        dirs += [os.path.join(os.path.dirname(d), "sbin") for d in dirs]
        install = find_binary("mariadb-install-db", [*dirs, *SERVER_DIRS])
        server = find_binary("mariadbd", [*dirs, *SERVER_DIRS])
        if not install or not server:
            raise BackupFailed(
                "a scratch MariaDB server is needed to load the dump into, and none is "
                f"installed here (mariadbd): install {self.package}"
            )
        return install, server

    @property
    def socket(self) -> str:
        return self.path("sock", "mariadb.sock")

    @property
    def conn(self) -> DBConn:
        """How the client reaches this server: its socket, as its administrator."""
        return DBConn(host="localhost", socket=self.socket, user=_me())

    def _start(self) -> None:
        install, server = self.binaries()
        data = self.folder("data")
        self.folder("sock")
        files = self.folder("files")
        plugins = self.folder("plugins")
        if self.fill is not None:
            extra = ("--skip-grant-tables", *self.fill(data))
        else:
            extra = ()
            self._install(install, data)
        self.spawn(
            (
                server,
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={self.socket}",
                "--skip-networking",
                f"--pid-file={self.path('mariadbd.pid')}",
                f"--secure-file-priv={files}",
                f"--plugin-dir={plugins}",
                f"--tmpdir={self.path('tmp')}",
                "--skip-log-bin",
                "--skip-name-resolve",
                "--innodb-log-file-size=8M",
                "--innodb-buffer-pool-size=64M",
                "--innodb-flush-log-at-trx-commit=2",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
                "--event-scheduler=OFF",
                *extra,
            ),
            "mariadbd",
        )
        self.wait_until(lambda: os.path.exists(self.socket) and self._answers())

    def _install(self, install: str, data: str) -> None:
        user = _me()  # the administrator's name: tiffin's own OS user (unix_socket)
        self.run(
            (
                install,
                "--no-defaults",
                f"--datadir={data}",
                "--auth-root-authentication-method=socket",
                f"--auth-root-socket-user={user}",
                "--skip-test-db",
                "--skip-name-resolve",
            ),
            "mariadb-install-db",
        )

    def _answers(self) -> bool:
        client = process.which("mariadb", "mysql") or "mariadb"
        c = self.conn
        cmd = (
            client,
            "--no-defaults",
            "--protocol=SOCKET",
            f"--socket={c.socket}",
            f"--user={c.user}",
            "-N",
            "-B",
            "-e",
            "SELECT 1",
        )
        return answers(cmd, "mariadb")


def _me() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name

"""A throwaway MariaDB server (mariadbd) on 127.0.0.1."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from .base import Server
from .env import scrubbed_environ
from .ports import free_port, port_open
from .proc import ServerError, require_executable, run_command

__all__ = ["MariaDB"]

PASSWORD = "Maria-S3cret-pw"

# ALL PRIVILEGES on *.* already covers what mariadb-dump --all-databases --events
# --routines --lock-tables needs (RELOAD, PROCESS, SUPER, BINLOG MONITOR a.k.a.
# REPLICATION CLIENT, LOCK TABLES, EVENT, TRIGGER, SHOW VIEW); they are listed
# explicitly so the intent survives a future narrowing of the first GRANT.
_SETUP_SQL = """
CREATE USER IF NOT EXISTS 'tiffin'@'127.0.0.1' IDENTIFIED BY '{pw}';
CREATE USER IF NOT EXISTS 'tiffin'@'%' IDENTIFIED BY '{pw}';
GRANT ALL PRIVILEGES ON *.* TO 'tiffin'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'tiffin'@'%' WITH GRANT OPTION;
GRANT RELOAD, PROCESS, SUPER, REPLICATION CLIENT, LOCK TABLES, EVENT, TRIGGER, SHOW VIEW
  ON *.* TO 'tiffin'@'127.0.0.1';
GRANT RELOAD, PROCESS, SUPER, REPLICATION CLIENT, LOCK TABLES, EVENT, TRIGGER, SHOW VIEW
  ON *.* TO 'tiffin'@'%';
FLUSH PRIVILEGES;
"""


class MariaDB(Server):
    """mariadbd with its own datadir, TCP on 127.0.0.1:port and a unix socket.

    ``root`` logs in over the socket without a password (used by :meth:`sql`);
    ``tiffin`` / :data:`PASSWORD` logs in over TCP with all privileges.
    """

    name = "mariadb"

    def __init__(
        self, port: int | None = None, server_args: tuple[str, ...] = ("--skip-log-bin",)
    ) -> None:
        super().__init__(workdir_owner="mysql", workdir_mode=0o755)
        # e.g. ("--log-bin=mysql-bin", "--server-id=1") for a replication source
        self.server_args = server_args
        self.port = port or free_port()
        self.datadir: Path = self.workdir / "data"
        self.socket: Path = self.workdir / "mariadb.sock"
        self.user = "tiffin"
        self.password = PASSWORD
        self.client = "mariadb"

    def _start(self) -> None:
        mariadbd = require_executable("mariadbd")
        self.client = require_executable("mariadb")
        env = scrubbed_environ()
        first_start = not (self.datadir / "mysql").is_dir()
        if first_start:
            install_db = require_executable("mariadb-install-db")
            for attempt in (1, 2):
                try:
                    self._run_logged(
                        [
                            install_db,
                            "--no-defaults",  # must be first, or /etc/mysql/my.cnf leaks in
                            f"--datadir={self.datadir}",
                            "--user=mysql",
                            "--auth-root-authentication-method=normal",
                            "--skip-test-db",
                            # its own temp folder: bootstraps running at once in /tmp were
                            # seen to lose each other's temporary tables ("Could not remove
                            # temporary table '/tmp/#sql-temptable-...'")
                            f"--tmpdir={self.workdir}",
                        ],
                        cwd=self.workdir,
                        env=env,
                    )
                    break
                except ServerError as exc:
                    # mariadbd 10.11.19 seldom crashes (signal 11 in ha_maria::drop_table)
                    # while bootstrapping on a loaded machine: once more, on a fresh dir.
                    if attempt == 2 or "got signal" not in str(exc):
                        raise
                    shutil.rmtree(self.datadir, ignore_errors=True)
        self._spawn(
            [
                mariadbd,
                "--no-defaults",
                "--user=mysql",
                f"--datadir={self.datadir}",
                "--bind-address=127.0.0.1",
                f"--port={self.port}",
                f"--socket={self.socket}",
                f"--pid-file={self.workdir / 'mariadbd.pid'}",
                f"--tmpdir={self.workdir}",
                "--skip-name-resolve",
                *self.server_args,
                "--innodb-log-file-size=8M",
                "--innodb-buffer-pool-size=64M",
                "--innodb-flush-log-at-trx-commit=2",
                # Debian's packaged defaults (its my.cnf is not read here)
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
            ],
            stop_signal=signal.SIGTERM,
            cwd=self.workdir,
            env=env,
        )
        self._wait_until(
            lambda: self.socket.exists() and port_open(self.host, self.port),
            "socket and port",
        )
        if first_start:
            self.sql(_SETUP_SQL.format(pw=self.password))

    # -- clients --------------------------------------------------------------------
    def sql(self, query: str, database: str | None = None) -> str:
        """Run SQL as root over the unix socket (fed on stdin, ``-N -B`` output).

        Returns stdout without its final newline; raises CommandError with
        stderr on failure.
        """
        argv = [
            self.client,
            "--no-defaults",
            "--user=root",
            f"--socket={self.socket}",
            "--protocol=SOCKET",
            "-N",
            "-B",
        ]
        if database is not None:
            argv.append(database)
        return run_command(argv, input=query, env=scrubbed_environ()).removesuffix("\n")

    def conn_args(self) -> list[str]:
        """tiffin CLI options to reach this server as ``tiffin`` over TCP."""
        return ["--host", self.host, "--port", str(self.port), "--user", self.user]

    def client_env(self) -> dict[str, str]:
        """Extra environment for a tiffin child: the password."""
        return {"TIFFIN_DB_PASSWORD": self.password}

    def tcp_client_argv(self, database: str | None = None) -> list[str]:
        """``mariadb`` client argv for user tiffin over TCP (password: MYSQL_PWD)."""
        argv = [self.client, "--no-defaults", "--protocol=TCP"]
        argv += [f"--host={self.host}", f"--port={self.port}", f"--user={self.user}"]
        return [*argv, database] if database else argv

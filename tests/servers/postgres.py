"""A throwaway PostgreSQL 15 cluster on 127.0.0.1, run as the ``postgres`` OS user."""

from __future__ import annotations

import os
import pwd
import signal
from pathlib import Path

from .base import Server
from .env import scrubbed_environ
from .ports import free_port
from .proc import CommandError, require_executable, run_command, unavailable

__all__ = ["Postgres"]

PASSWORD = "Pg-S3cret-pw"
BINDIR = Path("/usr/lib/postgresql/15/bin")
OS_USER = "postgres"


class Postgres(Server):
    """``postgres`` with its own data dir, TCP on 127.0.0.1:port (scram-sha-256,
    user ``postgres`` / :data:`PASSWORD`) and a unix socket in ``socket_dir``
    (trust, used by :meth:`sql`)."""

    name = "postgres"

    def __init__(
        self,
        port: int | None = None,
        bindir: Path = BINDIR,
        settings: dict[str, str] | None = None,
    ) -> None:
        # initdb and postgres refuse root: the workdir must belong to postgres.
        super().__init__(workdir_owner=OS_USER, workdir_mode=0o755)
        self.port = port or free_port()
        self.bindir = bindir
        self.datadir: Path = self.workdir / "data"
        self.socket_dir: Path = self.workdir
        self.user = "postgres"
        self.password = PASSWORD
        # More `-c NAME=VALUE` server settings (archive_mode, archive_command ...).
        self.settings = dict(settings or {})

    def bin(self, program: str) -> str:
        """Absolute path of a PostgreSQL program (pg_dump, psql, ...)."""
        return str(self.bindir / program)

    def _as_postgres(self) -> dict[str, object]:
        return {
            "user": OS_USER,
            "group": OS_USER,
            "extra_groups": [],
            "cwd": self.workdir,
            "env": scrubbed_environ()
            | {"HOME": str(self.workdir), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
        }

    def _start(self) -> None:
        for program in ("initdb", "postgres", "psql", "pg_isready"):
            require_executable(self.bin(program))
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            unavailable(f"no {OS_USER} OS user")
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb()
        self._spawn(
            [
                self.bin("postgres"),
                "-D",
                str(self.datadir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"port={self.port}",
                "-c",
                f"unix_socket_directories={self.socket_dir}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                # pg_dump locks every table of a database in one transaction: a server of
                # 20,000 tables needs room for them (64 x 100 connections by default).
                "-c",
                "max_locks_per_transaction=512",
                *(f"-c{k}={v}" for k, v in self.settings.items()),
            ],
            stop_signal=signal.SIGINT,  # fast shutdown
            **self._as_postgres(),
        )
        self._wait_until(self._is_ready, "pg_isready")

    def _initdb(self) -> None:
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        entry = pwd.getpwnam(OS_USER)
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        pwfile.chmod(0o600)
        try:
            self._run_logged(
                [
                    self.bin("initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    self.user,
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-N",
                ],
                **self._as_postgres(),
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _is_ready(self) -> bool:
        try:
            run_command(
                [self.bin("pg_isready"), "-q", "-h", self.host, "-p", str(self.port)], timeout=10
            )
        except CommandError:
            return False
        return True

    # -- clients --------------------------------------------------------------------
    def sql(self, query: str, database: str = "postgres") -> str:
        """Run SQL as ``postgres`` via psql over the unix socket (trust), fed on
        stdin (so CREATE DATABASE works), unaligned tuples-only output.

        Returns stdout without its final newline; raises CommandError with
        stderr on failure (ON_ERROR_STOP=1).
        """
        argv = [
            self.bin("psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            database,
        ]
        return run_command(argv, input=query).removesuffix("\n")

    def conn_args(self) -> list[str]:
        """tiffin CLI options to reach this server as ``postgres`` over TCP."""
        return ["--host", self.host, "--port", str(self.port), "--user", self.user]

    def client_env(self) -> dict[str, str]:
        """Extra environment for a tiffin child: the password."""
        return {"TIFFIN_DB_PASSWORD": self.password}

"""A scratch PostgreSQL server started from a base backup (drill --physical): the jailed,
socket-only server of tiffin.engine.scratch, whose data folder is the base backup plus the
archived WAL to replay, put in its pg_wal by tiffin beforehand.

The server runs as a standby with no primary and no restore_command (the jail lets it run
no program, and it needs none): it replays what pg_wal holds, following the newest
timeline's history, and is promoted once it has replayed the last record. Nothing of the
backup's own configuration decides how it runs: postgresql.conf, pg_hba.conf and
pg_ident.conf are the scratch folder's own (trust over the private socket), archiving is
off, and what the command line sets wins over the backup's postgresql.auto.conf.
"""

from __future__ import annotations

import os
import pwd
import re
import time
from collections.abc import Callable

from tiffin.engine import process
from tiffin.engine.scratch.base import READY_SECONDS, answers
from tiffin.engine.scratch.postgres import (
    PORT,
    ScratchPostgres,
    pick_server,
    postgres_argv,
    server_dirs,
)
from tiffin.errors import BackupFailed
from tiffin.job import DBConn

# What a hot standby needs at least as large as its primary had (pg_controldata's words).
CONTROL = {
    "max_connections setting": "max_connections",
    "max_worker_processes setting": "max_worker_processes",
    "max_wal_senders setting": "max_wal_senders",
    "max_prepared_xacts setting": "max_prepared_transactions",
    "max_locks_per_xact setting": "max_locks_per_transaction",
}
REPLAY_SECONDS = 3600.0  # replay that makes no progress for a minute is stalled (see below)
STALL_SECONDS = 60.0


def lsn_of(text: str) -> int:
    high, low = text.strip().split("/")
    return int(high, 16) << 32 | int(low, 16)


class ScratchRecovery(ScratchPostgres):
    """FILL(data folder) writes the base backup and the WAL to replay into the (empty,
    private) data folder; the server starts on them as a standby."""

    def __init__(self, major: int, fill: Callable[[str], None], superuser: str) -> None:
        super().__init__(major)
        self.fill = fill
        self.superuser = superuser

    def _start(self) -> None:
        bindir = pick_server(self.major, server_dirs())
        data = self.folder("data")
        sock = self.folder("sock")
        self.fill(data)
        with open(os.path.join(data, "standby.signal"), "wb"):
            pass
        for stale in ("recovery.signal", "postmaster.pid"):
            if os.path.lexists(os.path.join(data, stale)):
                os.unlink(os.path.join(data, stale))
        conf = {name: self.path(name) for name in ("postgresql.conf", "pg_hba.conf", "ident")}
        for name, path in conf.items():
            with open(path, "w", encoding="utf-8") as f:
                f.write("local all all trust\n" if name == "pg_hba.conf" else "")
        self._give(data)
        settings = {
            "config_file": conf["postgresql.conf"],
            "hba_file": conf["pg_hba.conf"],
            "ident_file": conf["ident"],
            "data_directory": data,
            "listen_addresses": "",
            "port": str(PORT),
            "unix_socket_directories": sock,
            "unix_socket_permissions": "0700",
            "dynamic_shared_memory_type": "mmap",
            "logging_collector": "off",
            "fsync": "off",
            "archive_mode": "off",
            "restore_command": "",
            "primary_conninfo": "",
            "hot_standby": "on",
            "recovery_target_timeline": "latest",
            "ssl": "off",
            **self._control(bindir, data),
        }
        self.spawn(postgres_argv(bindir, data, settings), "postgres")
        ready = (os.path.join(bindir, "pg_isready"), "-q", "-h", sock, "-p", str(PORT))
        self.wait_until(lambda: answers(ready, "pg_isready"))

    @property
    def conn(self) -> DBConn:
        """How psql reaches this server: its socket folder, as the backup's superuser."""
        return DBConn(host=self.path("sock"), port=PORT, user=self.superuser)

    def _give(self, data: str) -> None:
        """Give the data folder and all in it to the server's user, private (0700)."""
        os.chmod(data, 0o700)
        if not self.user:
            return
        for root, dirs, files in os.walk(data):
            for n in dirs + files:
                self._own_link(os.path.join(root, n))

    def _own_link(self, path: str) -> None:
        assert self.user
        entry = pwd.getpwnam(self.user)
        os.lchown(path, entry.pw_uid, entry.pw_gid)

    def _control(self, bindir: str, data: str) -> dict[str, str]:
        """Return the settings a standby needs as large as its primary's (pg_controldata)."""
        out = process.run((os.path.join(bindir, "pg_controldata"), data), name="pg_controldata")
        found = {}
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in CONTROL and value.strip().isdigit():
                found[CONTROL[key.strip()]] = value.strip()
        return found

    def sql(self, text: str) -> str:
        bindir = pick_server(self.major, server_dirs())
        cmd = (os.path.join(bindir, "psql"), "-X", "-w", "-q", "-A", "-t", "-c", text)
        env = {
            "PGHOST": self.path("sock"),
            "PGPORT": str(PORT),
            "PGUSER": self.superuser,
            "PGDATABASE": "postgres",
        }
        return process.run(cmd, name="psql", env=env).strip()

    def promote_after(self, end_lsn: int) -> None:
        """Wait until the server has replayed WAL past END_LSN (bounded: it must keep
        progressing), then promote it and wait until it takes writes. Raise BackupFailed if
        replay stalls or the server ends."""
        best, moved = -1, time.monotonic()
        deadline = time.monotonic() + REPLAY_SECONDS
        while True:
            if self.child is None or self.child.proc.poll() is not None:
                tail = self.child.stderr_tail.splitlines() if self.child else []
                raise BackupFailed(f"the scratch server ended: {(tail or ['no message'])[-1]}")
            got = self.sql("SELECT coalesce(pg_last_wal_replay_lsn()::text, '0/0')")
            done = lsn_of(got) if re.match(r"^[0-9A-F]+/[0-9A-F]+$", got) else 0
            if done > end_lsn:
                break
            if done > best:
                best, moved = done, time.monotonic()
            if time.monotonic() - moved > STALL_SECONDS or time.monotonic() > deadline:
                raise BackupFailed(f"replay stopped at {got}, before the archive's end")
            time.sleep(0.1)
        self.sql(f"SELECT pg_promote(true, {int(READY_SECONDS)})")
        if self.sql("SELECT pg_is_in_recovery()") != "f":
            raise BackupFailed("the scratch server could not be promoted")

"""drill of a physical MariaDB backup: restored as the data directory of a scratch server.

The backup is unpacked, prepared and moved into the data directory of a throwaway MariaDB
(tiffin.engine.scratch: its own folder, a private socket, no TCP, jailed, as `nobody` when
tiffin runs as root) by the same code as `restore --into mysqldata` (with the same checks
of the untrusted stream), the server is started on it, and the tables and rows recorded at
backup time are read back through its socket. All of it is removed at the end.

With --to-time, the archived binary logs are replayed into that server from the backup's
coordinates up to the time first (as restore --into mysqldata --to-time does, through a
temporary administrator, since the server's grant tables are the backed-up server's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tiffin.catalog.holdings import latest
from tiffin.commands.drillpitr import Drill
from tiffin.commands.drillsql import mysql_counts
from tiffin.commands.mysqlpitr import Plan, planned, replayed, temporary_admin
from tiffin.engine.binlogreplay import apply, utc_text
from tiffin.engine.scratch import ScratchMariaDB
from tiffin.engine.streams import Reader
from tiffin.errors import BackupFailed, NotFound
from tiffin.job import RestoreJob, SourceSpec
from tiffin.sources import PHYSICAL
from tiffin.sources.mysqldata import MysqlDataLoader
from tiffin.targets import connected
from tiffin.targets.base import Target


def newest_into(target: Target, label: str | None, source: str | None) -> str:
    """Given a target, a label and a source identity (None: any), return the --into of the
    newest complete physical backup it holds (pgdata, mysqldata). Raise NotFound if none."""
    found = [(b, k) for k in PHYSICAL.values() if (b := latest(target, label, k.what, source))]
    if not found:
        raise NotFound("there is no complete physical backup here to drill as 'latest'")
    return max(found, key=lambda bk: bk[0].created)[1].into


Checks = Callable[
    [Mapping[str, Any], Mapping[str, dict[str, int] | None]], tuple[list[str], list[str], str]
]


def drill(
    job: Drill, stream: Reader, details: dict[str, Any], check_tables: Checks
) -> tuple[list[str], list[str], str]:
    """Given the drill job, the decoded STREAM of a physical backup and its manifest's
    details, restore it into a scratch server (then, with --to-time, replay the binary log
    archive into it up to that time) and return (problems, warnings, summary) as CHECK_TABLES
    judges what it holds (drill's rules), with what the server's jail lacked first among the
    warnings. Raise BackupFailed if it cannot be restored or the server does not start, Gap
    or OutsideWindow (before the server starts) if the archive cannot recover the time."""
    if job.to_time is None:
        return _drill(job, stream, details, check_tables, None)
    with (
        connected(job.target, job.target_options) as backups,
        planned(backups, job.target, job.target_options, job.to_time, job.name) as p,
    ):
        coords = details.get("binlog") or {}
        if (coords.get("file"), coords.get("position")) != (p.coords.file, p.coords.position):
            raise BackupFailed(
                f"the physical backup to recover {utc_text(job.to_time)} from is "
                f"{p.start.name}: drill that one with --to-time"
            )
        return _drill(job, stream, details, check_tables, p)


def _drill(
    job: Drill, stream: Reader, details: dict[str, Any], check_tables: Checks, p: Plan | None
) -> tuple[list[str], list[str], str]:
    server: ScratchMariaDB

    def fill(datadir: str) -> tuple[str, ...]:
        spec = SourceSpec("mariabackup", dir=datadir)
        restore = RestoreJob(
            job.target, "drill", job.target_options, "mysqldata", source=spec, owner=server.user
        )
        loader = MysqlDataLoader(restore)
        loader.check(details)
        loader.load(stream, details)
        return loader.server_options()

    server = ScratchMariaDB(fill)
    replay = ""
    with server:
        conn = server.conn
        if p is not None:
            conn, _ = temporary_admin(server.socket)
            replay = "; " + replayed(
                apply(p.archive, conn, p.coords, p.logs, job.to_time), job.to_time
            )
        dbs = dict.fromkeys([*details.get("databases", []), *(details.get("tables") or {})])
        restored = {db: mysql_counts(conn, db) for db in dbs}
    problems, warnings, summary = check_tables(details, restored)
    return problems, server.weaknesses() + warnings, summary + replay

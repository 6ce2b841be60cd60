"""drill --into mysql --to-time T: the dump `restore --to-time` would pick, loaded into a
throwaway jailed server (tiffin.engine.scratch) and its binary logs replayed there up to T;
nothing outside that scratch server is touched (SPEC §4, §6)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from tiffin.catalog.binlogs import archive_url, archived_names, chain, starts
from tiffin.catalog.holdings import latest, read_manifest
from tiffin.commands.drillsql import mysql_counts
from tiffin.commands.pitr import pick_start, window
from tiffin.engine.binlogreplay import Coordinates, apply, check_logs, plan, utc_text
from tiffin.engine.scratch import ScratchMariaDB
from tiffin.engine.stored import check_stored, decoded
from tiffin.errors import BackupFailed, NotFound
from tiffin.job import RestoreJob, SourceSpec, TargetOptions, TargetURL
from tiffin.sources.mysql import MySQLLoader
from tiffin.targets import Target, connected


class Drill(Protocol):
    """What a drill job gives this drill (tiffin.job.DrillJob)."""

    @property
    def target(self) -> TargetURL: ...
    @property
    def target_options(self) -> TargetOptions: ...
    @property
    def name(self) -> str: ...
    @property
    def to_time(self) -> datetime | None: ...
    @property
    def identity(self) -> str | None: ...


def run(target: Target, job: Drill) -> tuple[str, str]:
    """Given the target of the backups and a drill job with --to-time, drill the recovery of
    its backup (NAME or latest) to that time in scratch space. Return (the dump used, the
    summary). Raise Gap, OutsideWindow or BackupFailed before the scratch server starts."""
    assert job.to_time is not None
    url, options, name, to_time = job.target, job.target_options, job.name, job.to_time
    identity = job.identity
    if name == "latest":
        newest = latest(target, what="mysql")
        if newest is None:
            raise NotFound("there is no complete mysql backup here to drill as 'latest'")
        label, named = newest.label, None
    else:
        label, named = read_manifest(target, name).label, name
    candidates = starts(target, label, whats=("mysql",))  # dumps: loaded by the client
    with connected(archive_url(url, label), options) as archive:
        names = archived_names(archive.list())
        if not names:
            raise BackupFailed(f"--to-time needs the binary log archive {label}.binlog here")
        span = window(archive, candidates)
        if span is None and candidates:
            chain(names, candidates[0].file)  # Gap, naming it
        start = pick_start(candidates, named, to_time, span)
        if start is None:
            raise BackupFailed(f"no backup here finished before {utc_text(to_time)}")
        coords = Coordinates(start.file, start.position, start.gtid)
        logs = plan(archive, coords, to_time)
        check_logs(archive, logs)
        manifest = read_manifest(target, start.name)
        details = manifest.source
        raw, stream = decoded(target, start.name, manifest, identity)
        with ScratchMariaDB() as server:
            spec = SourceSpec("mysql", server.conn)
            loader = MySQLLoader(RestoreJob(url, start.name, options, "mysql", source=spec))
            try:
                loader.check(details)
                loader.load(stream, details)
            finally:
                stream.close()
            check_stored(raw, manifest, start.name)
            database = details["databases"][0] if details.get("single_database") else None
            done = apply(archive, server.conn, coords, logs, to_time, database)
            dbs = [d for d in details.get("tables") or {}]
            rows = sum(sum((mysql_counts(server.conn, d) or {}).values()) for d in dbs)
    last = utc_text(done.last_commit) if done.last_commit else "none after the dump"
    summary = (
        f"{start.name} loaded and {len(done.logs)} binary logs replayed to {utc_text(to_time)} "
        f"in a scratch server ({rows} rows in the dump's tables; last transaction applied at "
        f"{last})"
    )
    return start.name, summary

"""restore --into mysqldata --dir DATADIR --to-time T: the newest physical MariaDB backup that
finished before T, written as DATADIR, then the archived binary logs replayed into it from
the coordinates the backup recorded, up to T (SPEC §6).

Everything that can refuse is decided before DATADIR is written: the backup to start from,
the archive's window, the logs to replay (no gap) and their sha256 (tiffin.commands.pitr and
tiffin.engine.binlogreplay, as for a dump). The logs are then replayed into a server that
tiffin starts on DATADIR for the purpose, as its owner, on a private socket without TCP and
without binary logging, and stops when it is done. That server runs with its own grant
tables (so that account changes in the logs apply) and a temporary administrator,
`tiffin_replay_<random>`@localhost with a random password, made for the replay (through
--skip-grant-tables, then FLUSH PRIVILEGES) and dropped after it: nothing of it stays.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from tiffin.catalog.binlogs import Archived, Start, archive_url, archived_names, chain, starts
from tiffin.catalog.holdings import latest, read_manifest
from tiffin.commands.pitr import pick_start, window
from tiffin.engine import pipeline, process
from tiffin.engine.binlogreplay import Coordinates, Replayed, apply, check_logs, plan, utc_text
from tiffin.errors import BackupFailed, NotFound
from tiffin.job import DBConn, RestoreJob, TargetOptions, TargetURL
from tiffin.sources.mysql import with_secret
from tiffin.sources.mysqldata import MysqlDataLoader, owner_of
from tiffin.targets import Target, connected

WHAT = "mariabackup"
READY_SECONDS = 120


@dataclass(frozen=True)
class Plan:
    """What a recovery to a time from a physical backup starts from and replays."""

    archive: Target
    start: Start
    coords: Coordinates
    logs: list[Archived]


@contextmanager
def planned(
    backups: Target,
    url: TargetURL,
    options: TargetOptions,
    to_time: datetime | None,
    name: str,
    source_id: str | None = None,
) -> Iterator[Plan]:
    """Given the target of the backups (at URL, with OPTIONS), --to-time and NAME (or
    latest), yield the plan of the recovery with its archive connected: the newest
    physical backup that finished before --to-time (or NAME), its coordinates and the logs
    to replay, every one checked against its sha256. Raise Gap, OutsideWindow or BackupFailed
    (before anything is written) if there is no such recovery."""
    if name == "latest":
        newest = latest(backups, what=WHAT, source=source_id)
        if newest is None:
            raise NotFound("there is no complete physical MariaDB backup here to recover from")
        label, named = newest.label, None
    else:
        label, named = read_manifest(backups, name).label, name
    with connected(archive_url(url, label), options) as archive:
        if not archived_names(archive.list()):
            raise BackupFailed(
                f"--to-time needs the binary log archive {label}.binlog beside the backups "
                "(tiffin binlog); there is none"
            )
        candidates = starts(backups, label, whats=(WHAT,))
        span = window(archive, candidates)
        if span is None and candidates:
            chain(archived_names(archive.list()), candidates[0].file)  # Gap, naming it
        start = pick_start(candidates, named, to_time, span)
        if start is None:
            raise BackupFailed(
                f"no physical backup of {label} that records binary log coordinates "
                f"finished before {utc_text(to_time) if to_time else 'the end'}"
            )
        coords = Coordinates(start.file, start.position, start.gtid)
        logs = plan(archive, coords, to_time)
        check_logs(archive, logs)
        yield Plan(archive, start, coords, logs)


def replayed(done: Replayed, to_time: datetime | None) -> str:
    """Given what a replay applied and its time, return how the report says it."""
    last = utc_text(done.last_commit) if done.last_commit else "none after the backup"
    to = utc_text(to_time) if to_time else "the end of the archive"
    return (
        f"replayed the binary logs {done.logs[0]} to {done.logs[-1]} up to {to}: the last "
        f"transaction applied committed at {last}"
    )


def restore(job: RestoreJob) -> pipeline.RestoreResult:
    """Given restore --into mysqldata with --to-time, write DATADIR as it was at that time and
    return the result. Raise Gap, OutsideWindow or BackupFailed before DATADIR is written;
    BackupFailed or ToolFailed if the replay fails (DATADIR then holds the backup, with the
    logs applied up to where it failed: the message says so)."""
    t0 = time.monotonic()
    with (
        connected(job.target, job.target_options) as backups,
        planned(backups, job.target, job.target_options, job.to_time, job.name, job.source_id) as p,
    ):
        whole = replace(job, name=p.start.name, to_time=None)
        loader = MysqlDataLoader(whole)
        loaded = pipeline.restore(whole, loader)
        with ReplayServer(loader, job) as server:
            done = apply(p.archive, server.conn, p.coords, p.logs, job.to_time)
    summary = f"{loaded.summary}; then {replayed(done, job.to_time)}"
    return pipeline.RestoreResult(p.start.name, summary, time.monotonic() - t0)


def temporary_admin(socket: str) -> tuple[DBConn, str]:
    """Given the socket of a server started with --skip-grant-tables, turn its grant tables
    on and make a temporary administrator; return how to reach it and its name."""
    user = "tiffin_replay_" + secrets.token_hex(4)
    password = secrets.token_urlsafe(24)
    admin = DBConn(host="localhost", socket=socket, user="root")
    run_sql(
        admin,
        "FLUSH PRIVILEGES; "
        f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'; "
        f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'localhost' WITH GRANT OPTION;",
    )
    return DBConn(host="localhost", socket=socket, user=user, password=password), user


def run_sql(conn: DBConn, sql: str) -> None:
    client = process.which("mariadb", "mysql") or "mysql"
    cmd, fds = with_secret(client, conn, ("-N", "-B"))
    process.run(cmd, name="mariadb", input=sql.encode(), pass_fds=fds, timeout=60)


class ReplayServer:
    """mariadbd on a restored DATADIR, for a replay: its owner's, a private socket, no TCP,
    no binary log; a temporary administrator made on entry and dropped on exit."""

    def __init__(self, loader: MysqlDataLoader, job: RestoreJob) -> None:
        self.datadir = loader.datadir
        self.options = loader.server_options()
        self.owner = owner_of(job)
        self.work = ""
        self.child: process.Child | None = None
        self.user = ""
        self.conn = DBConn()

    def __enter__(self) -> ReplayServer:
        server = process.which("mariadbd", "mysqld") or _sbin("mariadbd")
        self.work = tempfile.mkdtemp(prefix=".tiffin-replay-", dir=os.path.dirname(self.datadir))
        try:
            os.mkdir(os.path.join(self.work, "files"), 0o700)
            if self.owner is not None:
                for path in (self.work, os.path.join(self.work, "files")):
                    os.chown(path, self.owner[1], self.owner[2])
            socket = os.path.join(self.work, "s.sock")
            self.child = process.Child(
                (
                    server,
                    "--no-defaults",
                    *([f"--user={self.owner[0]}"] if self.owner else []),
                    f"--datadir={self.datadir}",
                    f"--socket={socket}",
                    "--skip-networking",
                    f"--pid-file={os.path.join(self.work, 'mariadbd.pid')}",
                    f"--secure-file-priv={os.path.join(self.work, 'files')}",
                    f"--tmpdir={self.work}",
                    "--skip-log-bin",
                    "--skip-grant-tables",
                    "--skip-slave-start",
                    "--event-scheduler=OFF",
                    *self.options,
                ),
                name="mariadbd",
                stdout=subprocess.DEVNULL,
            )
            self._wait(DBConn(host="localhost", socket=socket, user="root"))
            self.conn, self.user = temporary_admin(socket)
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.child is not None and self.child.proc.poll() is None:
                run_sql(self.conn, f"DROP USER IF EXISTS '{self.user}'@'localhost';")
        finally:
            self._stop()

    def _wait(self, admin: DBConn) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            assert self.child is not None
            if self.child.proc.poll() is not None:
                tail = self.child.stderr_tail.splitlines() or ["no message"]
                raise BackupFailed(
                    f"the server started on {self.datadir} to replay the binary logs ended: "
                    + tail[-1]
                )
            if os.path.exists(admin.socket or ""):
                try:
                    run_sql(admin, "SELECT 1")
                    return
                except BackupFailed:
                    pass
            time.sleep(0.2)
        raise BackupFailed(f"the server started on {self.datadir} did not answer in time")

    def _stop(self) -> None:
        if self.child is not None:
            if self.child.proc.poll() is None:
                try:
                    self.child.proc.send_signal(signal.SIGTERM)
                except OSError:
                    pass
            self.child.wait(300)  # a clean shutdown flushes InnoDB; killed after that
            self.child = None
        if self.work:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = ""


def _sbin(name: str) -> str:
    for folder in ("/usr/sbin", "/usr/local/sbin"):
        if os.access(os.path.join(folder, name), os.X_OK):
            return os.path.join(folder, name)
    raise BackupFailed(f"{name} is not installed here: install mariadb-server to replay the logs")

"""Replay archived binary logs into a MySQL/MariaDB server, from a backup's coordinates up to
a time (SPEC §6): every transaction committed at or before it, none after.

Each log is streamed from the archive (its sha256 checked first, before anything is
applied), decoded and fed to `mariadb-binlog --start-position P --stop-datetime T+1s -`,
whose output goes straight into one `mariadb` session (guarded: no client command of the
log's text runs a program or touches a file), so temporary tables and session state carry
from log to log as they did on the server. Binary log times are whole seconds: stopping at
the first event of T+1 s keeps every transaction of the second T, and a transaction still
open there is rolled back when the session ends. The time of the last transaction applied
is read from the event headers as they pass.

replay() is the one entry: restore --to-time, drill --to-time and a physical backup's
--to-time all come here with the coordinates their backup recorded.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tiffin.catalog.binlogs import (
    Archived,
    Gap,
    archived_names,
    chain,
    parse_iso,
    read_record,
)
from tiffin.codecs import compressor
from tiffin.engine import process
from tiffin.engine.streams import BLOCK
from tiffin.errors import BackupFailed, IntegrityError, ToolFailed
from tiffin.job import DBConn
from tiffin.sources.binlogevents import EventReader
from tiffin.sources.mysql import guarded, load_failed, server_of, with_secret
from tiffin.targets import Target


class OutsideWindow(BackupFailed):
    """The time asked for lies outside what the archive can recover."""


@dataclass(frozen=True)
class Coordinates:
    """Where a backup's snapshot stands in the binary logs."""

    file: str
    position: int
    gtid: str | None = None


@dataclass(frozen=True)
class Replayed:
    """What a replay applied: the logs it read, and the time of the last transaction it
    applied (None: none after the coordinates)."""

    logs: tuple[str, ...]
    last_commit: datetime | None


def utc_text(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def plan(archive: Target, start: Coordinates, to_time: datetime | None) -> list[Archived]:
    """Given the archive, the coordinates to start from and the time to stop at (None: the
    end of the archive), return the logs to replay, in order. Raise Gap naming the first
    missing log, or OutsideWindow if TO_TIME is past the archive's last event. Nothing is
    read but the archive's listing and records."""
    names = chain(archived_names(archive.list()), start.file)
    newest = read_record(archive, names[-1])
    end = newest.end
    if to_time is not None and (end is None or to_time > end):
        shown = utc_text(end) if end else "nothing"
        raise OutsideWindow(
            f"{utc_text(to_time)} is past the end of the binary log archive, which holds "
            f"transactions up to {shown}"
        )
    logs: list[Archived] = []
    for name in names:
        record = newest if name == newest.log else read_record(archive, name)
        logs.append(record)
        if to_time is not None and record.end is not None and record.end > to_time:
            break
    return logs


def check_logs(archive: Target, logs: list[Archived]) -> None:
    """Read every log's stored bytes and check them against its record. Raise IntegrityError
    naming the first that differs: before anything is applied."""
    for record in logs:
        digest, size = hashlib.sha256(), 0
        stream = archive.open(record.stored)
        try:
            while data := stream.read(BLOCK):
                digest.update(data)
                size += len(data)
        finally:
            stream.close()
        if size != record.size or digest.hexdigest() != record.sha256:
            raise IntegrityError(
                f"the archived {record.log} does not match its sha256: it is damaged"
            )


def replay(
    archive: Target,
    conn: DBConn,
    start: Coordinates,
    to_time: datetime | None,
    database: str | None = None,
    rename: str | None = None,
) -> Replayed:
    """Given the archive, a server, the coordinates of the backup just loaded into it and the
    time to stop at (None: the end of the archive), apply every transaction committed after
    the coordinates and at or before TO_TIME. DATABASE: only that database's changes (a
    single-database backup), applied to RENAME if given. Return what was applied. Raise Gap,
    OutsideWindow or IntegrityError before anything is applied, ToolFailed if a tool fails."""
    logs = plan(archive, start, to_time)
    check_logs(archive, logs)
    return apply(archive, conn, start, logs, to_time, database, rename)


def binlog_args(
    position: int, stop_at: datetime | None, database: str | None, rename: str | None
) -> tuple[str, ...]:
    """Return mariadb-binlog's arguments for one log read from stdin."""
    args = ["--no-defaults"]  # a local decoder: no option file may change what it prints
    if position > 4:
        args.append(f"--start-position={position}")
    if stop_at is not None:
        args.append("--stop-datetime=" + stop_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))
    if database:
        args.append(f"--database={database}")
        if rename and rename != database:
            args.append(f"--rewrite-db={database}->{rename}")
    return (*args, "-")


def apply(
    archive: Target,
    conn: DBConn,
    start: Coordinates,
    logs: list[Archived],
    to_time: datetime | None,
    database: str | None = None,
    rename: str | None = None,
) -> Replayed:
    """Feed LOGS (checked) through mariadb-binlog into one client session. Return what was
    applied. Raise ToolFailed (quoting the tool) if either tool fails."""
    client_bin = process.which("mariadb", "mysql") or "mysql"
    decoder = process.which("mariadb-binlog", "mysqlbinlog") or "mysqlbinlog"
    stop_at = to_time + timedelta(seconds=1) if to_time is not None else None
    server = server_of(client_bin, conn)
    cmd, fds = with_secret(client_bin, conn, guarded(client_bin))
    client = process.Child(
        cmd,
        name="mariadb",
        pass_fds=fds,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        server=server,
    )
    assert client.proc.stdin is not None
    last: int = 0
    done: list[str] = []
    try:
        for record in logs:
            position = start.position if record.log == start.file else 4
            args = binlog_args(position, stop_at, database, rename)
            decode = process.Child(
                (decoder, *args),
                name="mariadb-binlog",
                env={"TZ": "UTC"},  # --stop-datetime is read in the local time zone
                stdin=subprocess.PIPE,
                stdout=client.proc.stdin,
            )
            stop = int(stop_at.timestamp()) if stop_at else None
            try:
                events = _feed(archive, record, decode, position, stop)
            except ToolFailed:
                if client.proc.poll() not in (None, 0):  # the client failed first: its error
                    client.wait()
                    raise load_failed(client) from None
                raise
            done.append(record.log)
            last = max(last, events.seen().last_commit)
            if events.stopped:
                break
        client.proc.stdin.close()
    except BaseException:
        client.abort()
        raise
    client.wait()
    client.raise_if_stalled()
    if client.proc.returncode != 0:
        raise load_failed(client)
    applied = datetime.fromtimestamp(last, UTC) if last else None
    return Replayed(tuple(done), applied)


def _feed(
    archive: Target, record: Archived, decode: process.Child, position: int, stop: int | None
) -> EventReader:
    """Stream RECORD's log into the DECODE child; return the reader of its events."""
    assert decode.proc.stdin is not None
    raw = archive.open(record.stored)
    events = EventReader(compressor(record.compression).decode(raw), record.log, position, stop)
    whole = True
    try:
        while data := events.read(BLOCK):
            try:
                decode.proc.stdin.write(data)
            except BrokenPipeError:
                whole = False  # it stopped at --stop-datetime and ended: the rest is not needed
                break
            decode.progressed()
        try:
            decode.proc.stdin.close()
        except BrokenPipeError:
            whole = False
    except BaseException:
        decode.abort()
        raise
    finally:
        events.close()
    decode.check()
    if whole:
        events.facts()  # the log ended mid-event: IntegrityError
    return events


def window_end(archive: Target) -> datetime | None:
    """Return the time of the archive's last event, or None if it holds no log."""
    names = archived_names(archive.list())
    return read_record(archive, names[-1]).end if names else None


__all__ = [
    "Coordinates",
    "Gap",
    "OutsideWindow",
    "Replayed",
    "parse_iso",
    "plan",
    "replay",
    "window_end",
]

"""`tiffin binlog`: ship a server's closed binary logs to PATH/LABEL.binlog/ (SPEC §6).

One pass (ship_once) rotates the log being written, then stores every closed log the
archive lacks, oldest first: its bytes (fetched through a pipe, compressed, hashed, checked
whole event by event and against the size the server lists) under LOG.gz, then its record
LOG.json. Each is published by the target's own put (a temporary name, then published
without overwriting), so a log is never stored under its final name until it is whole.

--follow repeats passes (follow), rotating only when the log being written holds new events
and has been open for half of --max-lag: a change waits at most that, plus a tick and its
shipping, before it is archived. Why rotation and not a live replication stream: the
archive publishes whole logs only, so a log must be closed before it is archived however
its bytes travel; the stream would only move the wait from the server to a spool here.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tiffin.catalog.binlogs import (
    Archived,
    Gap,
    archive_url,
    archived_names,
    first_missing,
    split_log,
    starts,
    write_record,
)
from tiffin.catalog.naming import CODEC_EXT
from tiffin.codecs import compressor
from tiffin.engine import lock, process
from tiffin.engine.prune import remove_partial
from tiffin.engine.streams import HashingReader
from tiffin.errors import BackupFailed, IntegrityError, TiffinError
from tiffin.job import BinlogJob
from tiffin.sources.binlogevents import EventReader, iso
from tiffin.sources.binlogserver import BinlogServer, check_size
from tiffin.targets import Target, connected

log = logging.getLogger("tiffin")


@dataclass
class Pass:
    """What one pass did: the logs it stored, and the gap it found (None: none)."""

    shipped: list[Archived] = field(default_factory=list)
    gap: Gap | None = None
    newest: str | None = None  # the newest log the archive holds after the pass

    @property
    def size(self) -> int:
        return sum(a.size for a in self.shipped)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ship_log(
    server: BinlogServer, archive: Target, job: BinlogJob, name: str, size: int
) -> Archived:
    """Given a closed log and the size the server lists, store it and its record. Raise a
    TiffinError if anything fails: nothing is then left under either final name."""
    stored = name + CODEC_EXT[job.compress]
    if archive.stat(stored) is not None:  # a run ended between the bytes and the record
        archive.remove(stored)
    events = EventReader(server.fetch(name), name)
    encoded = compressor(job.compress, job.compress_level).encode(events)
    hashing = HashingReader(encoded)
    try:
        put = archive.put(stored, hashing)
    finally:
        hashing.close()
    try:
        facts = events.facts()
        check_size(name, facts.size, size)
        if put.size != hashing.size:
            raise IntegrityError(f"the target stored {put.size} bytes of {hashing.size} sent")
        record = Archived(
            log=name,
            stored=stored,
            size=hashing.size,
            sha256=hashing.sha256,
            compression=job.compress,
            log_size=facts.size,
            first_time=iso(facts.first_time) if facts.first_time else None,
            last_time=iso(facts.last_time) if facts.last_time else None,
            last_commit=iso(facts.last_commit) if facts.last_commit else None,
            server_id=facts.server_id,
            rotates_to=facts.rotates_to or None,
            archived=_now(),
        )
        write_record(archive, record)
    except BaseException:
        archive.remove(stored)
        raise
    return record


def find_gap(
    on_server: list[str], archived: list[str], dump_start: str | None
) -> tuple[list[str], Gap | None]:
    """Given the server's logs (oldest first, the last one open), the archived ones and the
    log the newest backup's coordinates are in (None: no backup records any), return the
    closed logs to ship and the gap, if any: a log the archive needs from that backup on (or
    from its oldest log, if no backup) that neither the archive nor the server holds."""
    closed = on_server[:-1]
    last = split_log(archived[-1]) if archived else None
    todo = [n for n in closed if last is None or (split_log(n) or ("", -1))[1] > last[1]]
    have = sorted(set(archived) | set(closed), key=lambda n: (split_log(n) or ("", -1))[1])
    start = dump_start
    if start is None and archived:
        start = archived[0]
    if start is None or not have:
        return todo, None
    begin = split_log(start)
    newest = split_log(have[-1])
    if begin is not None and newest is not None and begin[1] > newest[1]:
        return todo, None  # the backup is newer than every closed log: nothing needed yet
    missing = first_missing(have, start)
    if missing is None:
        return todo, None
    return todo, Gap(
        missing,
        f"the binary log {missing} was purged from the server before it was archived: "
        "the archive has a gap there; take a new backup to start a new window",
    )


def ship_once(
    server: BinlogServer, archive: Target, backups: Target, job: BinlogJob, rotate: bool = True
) -> Pass:
    """Rotate (if ROTATE), then ship every closed log the archive lacks. Return what was done,
    with the gap found if any (the logs after it are shipped all the same)."""
    if rotate:
        server.rotate()
    logs = server.logs()
    entries = archive.list()
    archived = archived_names(entries)
    # What a killed run left half-written: the folder is the archive's alone, and only this
    # run (it holds the lock) writes in it.
    for e in entries:
        if e.partial:
            remove_partial(archive, e.name)
    newest = starts(backups, job.label, newest_only=True)
    todo, gap = find_gap([n for n, _ in logs], archived, newest[0].file if newest else None)
    sizes = dict(logs)
    done = Pass(gap=gap)
    for name in todo:
        done.shipped.append(ship_log(server, archive, job, name, sizes[name]))
    done.newest = done.shipped[-1].log if done.shipped else (archived[-1] if archived else None)
    return done


class Follower:
    """The --follow loop's state: when the open log was rotated, and where it stood then."""

    def __init__(self, server: BinlogServer, max_lag: float) -> None:
        self.server = server
        self.max_lag = max_lag
        self.opened = 0.0  # monotonic time of the last rotation (0: none yet)
        self.mark: tuple[str, int] | None = None  # the open log's position after it
        self.current = ""  # the log being written, at the last look
        self.passed: str | None = None  # the log being written after the last whole pass

    def due(self) -> bool:
        """Return whether to rotate now: the open log holds new events and has been open
        half of --max-lag (or was never rotated by us)."""
        pos = self.server.position()
        self.current = pos[0]
        if pos == self.mark:
            return False
        return not self.opened or time.monotonic() - self.opened >= self.max_lag / 2

    def idle(self) -> bool:
        """Return whether no log was closed since the last whole pass (nothing to ship, and
        no log to have been purged before it was shipped)."""
        return self.passed is not None and self.current == self.passed

    def rotated(self) -> None:
        self.opened = time.monotonic()
        self.mark = self.server.position()
        self.current = self.mark[0]


def tick(max_lag: float) -> float:
    """The seconds between two looks at the server under --follow."""
    return min(5.0, max(0.2, max_lag / 10))


class Places:
    """The two targets a pass uses, connected when first needed and again after a failure
    (a restarted SFTP or FTP server leaves the old connection dead)."""

    def __init__(self, job: BinlogJob) -> None:
        self.job = job
        self._stack: contextlib.ExitStack | None = None
        self._pair: tuple[Target, Target] | None = None

    def get(self) -> tuple[Target, Target]:
        """Return (archive, backups), connecting them if needed."""
        if self._pair is None:
            stack = contextlib.ExitStack()
            try:
                opts = self.job.target_options
                backups = stack.enter_context(connected(self.job.target, opts))
                where = archive_url(self.job.target, self.job.label)
                archive = stack.enter_context(connected(where, opts))
            except BaseException:
                stack.close()
                raise
            self._stack, self._pair = stack, (archive, backups)
        return self._pair

    def drop(self) -> None:
        """Close the connections (a failure: the next get() connects again)."""
        stack, self._stack, self._pair = self._stack, None, None
        if stack is not None:
            try:
                stack.close()
            except Exception as exc:  # a dead connection may fail to close: it is gone
                log.debug("closing a failed target: %s", exc)


def follow(
    job: BinlogJob,
    server: BinlogServer,
    places: Places,
    stop: threading.Event,
    told: Callable[[Pass], None],
) -> None:
    """Ship as the server writes until STOP is set; then rotate and ship once more (what it
    holds is stored) and return. A pass that fails is retried every tick; once passes have
    failed for longer than --timeout, the last error is raised. A gap is raised at once."""
    state = Follower(server, job.max_lag)
    failing_since: float | None = None
    while True:
        stopping = stop.is_set()
        try:
            archive, backups = places.get()
            rotate = stopping or state.due()
            if not rotate and state.idle():
                failing_since = None
                stop.wait(tick(job.max_lag))
                continue
            done = ship_once(server, archive, backups, job, rotate=rotate)
            if rotate:
                state.rotated()
            state.passed = state.current
            failing_since = None
            told(done)
            if done.gap is not None:
                raise done.gap
        except Gap:
            raise
        except TiffinError as exc:
            places.drop()
            if stopping:
                log.warning("the last pass before stopping failed: %s", exc)
                return
            now = time.monotonic()
            if failing_since is None:
                failing_since = now
                log.warning("binlog: %s; retrying for up to %g s", exc, job.target_options.timeout)
            elif now - failing_since > job.target_options.timeout:
                raise BackupFailed(
                    f"the archive could not be kept for {now - failing_since:.0f} seconds "
                    f"(over --timeout {job.target_options.timeout:g}): {exc}"
                ) from exc
        if stopping:
            return
        stop.wait(tick(job.max_lag))


def run(
    job: BinlogJob,
    stop: threading.Event | None = None,
    told: Callable[[Pass], None] = lambda p: None,
) -> Pass:
    """Given a binlog job, ship once (or follow until STOP is set). Return the last pass.
    Raise Gap for a gap, another TiffinError if the server or the target fails."""
    process.set_patience(job.target_options.timeout)
    where = archive_url(job.target, job.label)
    server = BinlogServer(job.conn)
    places = Places(job)
    try:
        with lock.hold(job.label, "binlog", where.redacted()):
            if stop is not None:
                follow(job, server, places, stop, told)
                return Pass()
            archive, backups = places.get()
            done = ship_once(server, archive, backups, job)
            if done.gap is not None:
                raise done.gap
            return done
    finally:
        places.drop()
        server.close()

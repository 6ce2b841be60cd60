"""restore --into mysql [--to-time T]: the newest dump that finished before T, then its
binary logs replayed from its coordinates up to T (SPEC §6).

Everything that can refuse the restore is decided before anything is loaded: the backup to
start from, the archive's window (from the end of the oldest backup the archive continues
without a gap, to its last event), the logs to replay and their sha256. A restore that
finds no archive beside the backups is the plain restore it always was; one given --to-time
without an archive is refused.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime

from tiffin.catalog.binlogs import (
    Start,
    archive_url,
    archived_names,
    chain,
    first_missing,
    read_record,
    starts,
)
from tiffin.catalog.holdings import latest, read_manifest
from tiffin.catalog.watch import Window
from tiffin.engine import pipeline
from tiffin.engine.binlogreplay import Coordinates, OutsideWindow, apply, check_logs, plan, utc_text
from tiffin.errors import BackupFailed, NotFound
from tiffin.job import RestoreJob
from tiffin.targets import Target, connected


def window_text(span: Window) -> str:
    """Return how list and errors say a window."""
    return f"recoverable from {utc_text(span.first)} to {utc_text(span.last)}"


def window(archive: Target, candidates: list[Start]) -> Window | None:
    """Given an archive and the backups that record coordinates (newest first), return its
    window, or None if no backup starts a chain the archive holds without a gap."""
    names = archived_names(archive.list())
    if not names:
        return None
    whole = [c for c in candidates if first_missing(names, c.file) is None]
    if not whole:
        return None
    end = read_record(archive, names[-1]).end
    if end is None:
        return None
    return Window(min(c.finished for c in whole), end)


def _label_of(backups: Target, job: RestoreJob) -> tuple[str, str | None]:
    """Return the label whose archive to use and the backup NAME named (None: latest)."""
    if job.name == "latest":
        newest = latest(backups, what="mysql", source=job.source_id)
        if newest is None:
            raise NotFound("there is no complete mysql backup here to restore as 'latest'")
        return newest.label, None
    return read_manifest(backups, job.name).label, job.name


def restore(job: RestoreJob) -> pipeline.RestoreResult | None:
    """Given a restore --into mysql, restore to --to-time (default: the end of the archive)
    and return the result; None if there is no archive and no --to-time (a plain restore is
    the caller's). Raise Gap, OutsideWindow or BackupFailed before anything is loaded."""
    t0 = time.monotonic()
    with connected(job.target, job.target_options) as backups:
        try:
            label, named = _label_of(backups, job)
        except NotFound:
            if job.to_time is None:
                return None  # the plain restore says what is missing
            raise
        with connected(archive_url(job.target, label), job.target_options) as archive:
            if not archived_names(archive.list()):
                if job.to_time is None:
                    return None
                raise BackupFailed(
                    f"--to-time needs the binary log archive {label}.binlog beside the backups "
                    "(tiffin binlog); there is none"
                )
            candidates = starts(backups, label, whats=("mysql",))  # dumps: loaded by the client
            span = window(archive, candidates)
            if span is None and candidates:
                chain(archived_names(archive.list()), candidates[0].file)  # Gap, naming it
            start = pick_start(candidates, named, job.to_time, span)
            if start is None:
                return None
            coords = Coordinates(start.file, start.position, start.gtid)
            logs = plan(archive, coords, job.to_time)  # a gap or a time past the end: refused
            check_logs(archive, logs)
            details = read_manifest(backups, start.name).source
            loaded = pipeline.restore(replace(job, name=start.name, to_time=None))
            database = details["databases"][0] if details.get("single_database") else None
            rename = job.source.databases[0] if database and job.source.databases else None
            done = apply(archive, job.source.conn, coords, logs, job.to_time, database, rename)
    last = utc_text(done.last_commit) if done.last_commit else "none after the backup"
    first, final = done.logs[0], done.logs[-1]
    span_text = first if first == final else f"{first} to {final}"
    to = utc_text(job.to_time) if job.to_time else "the end of the archive"
    summary = (
        f"{loaded.summary}, then replayed the binary logs {span_text} up to {to}; "
        f"the last transaction applied committed at {last}"
    )
    return pipeline.RestoreResult(start.name, summary, time.monotonic() - t0)


def pick_start(
    candidates: list[Start], named: str | None, to_time: datetime | None, span: Window | None
) -> Start | None:
    """Return the backup to start from: NAMED, else the newest that finished at or before
    TO_TIME. Raise OutsideWindow if TO_TIME lies outside SPAN, BackupFailed if NAMED records
    no coordinates and TO_TIME asks for a replay."""
    if named is not None:
        chosen = next((c for c in candidates if c.name == named), None)
        if chosen is None:
            if to_time is None:
                return None
            raise BackupFailed(f"{named} records no binary log coordinates to replay from")
        if to_time is not None and to_time < chosen.finished:
            raise OutsideWindow(
                f"{utc_text(to_time)} is before {named} finished ({utc_text(chosen.finished)})"
            )
        return chosen
    if span is None:
        if to_time is None:
            return None
        raise OutsideWindow(
            "the binary log archive continues no complete backup here without a gap: "
            "nothing can be recovered to a time"
        )
    if to_time is not None and not span.first <= to_time <= span.last:
        raise OutsideWindow(
            f"{utc_text(to_time)} is outside the archive's window: {window_text(span)}"
        )
    fits = [c for c in candidates if to_time is None or c.finished <= to_time]
    return fits[0] if fits else None

"""What list, verify, prune and status add for mysql backups and their binary log archive
(SPEC §6 "Around both"): the window, the logs a backup needs re-read and chained, and the
logs no kept backup needs removed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime

from tiffin.catalog.backup import Backup
from tiffin.catalog.binlogs import (
    Start,
    archive_url,
    archived_names,
    first_missing,
    parse_iso,
    read_record,
    split_log,
    starts,
)
from tiffin.catalog.holdings import survey
from tiffin.catalog.watch import FAILED, OK, STALE, JobStatus, Shelf, Wanted, Window, span
from tiffin.commands.inventory import Verdict
from tiffin.commands.pitr import window, window_text
from tiffin.engine.binlogreplay import check_logs
from tiffin.errors import TiffinError
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets import Target, connected

MYSQL_WHATS = ("mysql", "sql", "mariabackup")  # what a listing calls backups with binlogs
KIND = "binlog"  # a config's binlog job, as status looks for it (catalog.watch.Wanted.kind)


def mysql_labels(items: Iterable[Backup]) -> list[str]:
    """Given listed backups, return the labels of the complete mysql ones (dumps, physical)."""
    return sorted({b.label for b in items if b.complete and b.what in MYSQL_WHATS})


def window_of(url: TargetURL, options: TargetOptions, backups: Target, label: str) -> Window | None:
    """Return LABEL's binary log window, or None if it has no archive (or none continuing a
    complete backup)."""
    with connected(archive_url(url, label), options) as archive:
        if not archived_names(archive.list()):
            return None
        return window(archive, starts(backups, label))


def window_lines(
    url: TargetURL, options: TargetOptions, backups: Target, items: Iterable[Backup]
) -> list[str]:
    """Return list's lines of each mysql label's binary log window."""
    lines = []
    for label in mysql_labels(items):
        try:
            span = window_of(url, options, backups, label)
        except TiffinError as exc:
            lines.append(f"{label}: the binary log archive cannot be read: {exc}")
            continue
        if span is not None:
            lines.append(f"{label} (binary logs): {window_text(span)}")
    return lines


def with_binlogs(
    url: TargetURL, options: TargetOptions, backups: Target, item: Backup, verdict: Verdict
) -> Verdict:
    """Given a mysql backup whose bytes verified, return its verdict with the archived logs
    it needs re-read against their sha256 and their chain checked, from its coordinates to
    the newest log. A backup without coordinates, or a label without archive, is as it was."""
    if not verdict.ok:
        return verdict
    start = next((s for s in starts(backups, item.label) if s.name == item.name), None)
    if start is None:
        return verdict
    try:
        with connected(archive_url(url, item.label), options) as archive:
            names = archived_names(archive.list())
            if not names:
                return verdict
            missing = first_missing(names, start.file)
            if missing is not None:
                problem = f"the binary log archive lacks {missing}, which a replay from it needs"
                return Verdict(verdict.name, "FAILED", verdict.size, verdict.sha256, problem)
            needed = needed_from(names, start.file)
            check_logs(archive, [read_record(archive, n) for n in needed])
    except TiffinError as exc:
        problem = f"its binary logs do not verify: {exc}"
        return Verdict(verdict.name, "FAILED", verdict.size, verdict.sha256, problem)
    checked = f"{len(needed)} binary logs {needed[0]} to {needed[-1]} checked"
    note = f"{verdict.reason}; {checked}" if verdict.reason else checked
    return Verdict(verdict.name, "OK", verdict.size, verdict.sha256, note)


def needed_from(names: list[str], start: str) -> list[str]:
    """Given archived log names in order and a backup's start log, return the logs from it on."""
    begin = split_log(start)
    assert begin is not None
    return [n for n in names if (split_log(n) or ("", -1))[1] >= begin[1]]


def prunable(names: list[str], kept: list[Start]) -> list[str]:
    """Given archived log names and the backups kept (those that record coordinates), return
    the logs no kept backup needs: those older than the oldest kept backup's start log. With
    no kept backup recording coordinates, none (the archive may be all a user has)."""
    seqs = [p[1] for s in kept if (p := split_log(s.file))]
    if not seqs:
        return []
    oldest = min(seqs)
    return [n for n in names if (split_log(n) or ("", oldest))[1] < oldest]


def prune_binlogs(
    url: TargetURL,
    options: TargetOptions,
    backups: Target,
    gone: set[str],
    label: str | None,
    dry_run: bool,
) -> list[str]:
    """After prune decided to delete GONE, remove each mysql label's archived logs that no
    kept backup needs (record first, then bytes: a log is never half-archived in a way that
    looks whole). Return prune's lines."""
    lines: list[str] = []
    labels = {label} if label else _labels(backups)
    for lab in sorted(labels):
        kept = [s for s in starts(backups, lab) if s.name not in gone]
        with connected(archive_url(url, lab), options) as archive:
            names = archived_names(archive.list())
            drop = prunable(names, kept)
            for name in drop:
                if not dry_run:
                    record = read_record(archive, name)
                    archive.remove(name + ".json")
                    archive.remove(record.stored)
            if drop:
                verb = "would delete" if dry_run else "deleted"
                lines.append(
                    f"{lab}: {verb} {len(drop)} binary logs no kept backup needs "
                    f"({drop[0]} to {drop[-1]})"
                )
    return lines


def _labels(backups: Target) -> set[str]:
    return set(mysql_labels(survey(backups, read=False)))


def status_window(
    url: TargetURL, options: TargetOptions
) -> Callable[[Shelf, Wanted], Window | None]:
    """Return what gives status the binary log window of a mysql job (None for others)."""

    def of(shelf: Shelf, w: Wanted) -> Window | None:
        if w.what not in ("mysql", "mariabackup"):
            return None
        return window_of(url, options, shelf.target, w.label)

    return of


def archive_status(
    shelf: Shelf, w: Wanted, url: TargetURL, options: TargetOptions, now: datetime, max_age: float
) -> JobStatus:
    """Given the shelf of the backups' target, a config's binlog job (kind KIND), that target
    and its options, the time now and --max-age in seconds, return the job's status: its
    newest archived log, when it was stored, the window. FAILED: no log archived, a gap
    between the oldest and newest log, or no backup here that the archive continues (nothing
    can be recovered with it); STALE: the newest log was stored more than MAX_AGE ago. Raise
    TiffinError if the archive cannot be read."""
    where = url.redacted()
    with connected(archive_url(url, w.label), options) as archive:
        names = archived_names(archive.list())
        if not names:
            reason = f"it has archived no binary log at {archive_url(url, w.label).redacted()}"
            return JobStatus(w.job, where, w.label, KIND, FAILED, (reason,))
        record = read_record(archive, names[-1])
        gap = first_missing(names)
        covered = window(archive, starts(shelf.target, w.label))
    stored = parse_iso(record.archived) or record.end or now
    newest = Backup(record.log, w.label, KIND, stored, size=record.size)
    age = (now - stored).total_seconds()
    failed = []
    if gap is not None:
        failed.append(f"the archive lacks {gap}, between {names[0]} and {names[-1]}")
    if covered is None:
        failed.append(
            "no complete mysql backup here starts where the archive continues it: nothing "
            "can be recovered with it"
        )
    stale = age > max_age
    if stale:
        failed.append(f"its newest binary log was stored {span(age)} ago, over {span(max_age)}")
    verdict = (FAILED if len(failed) > stale else STALE) if failed else OK
    found = JobStatus(w.job, where, w.label, KIND, verdict, tuple(failed), newest, stored, age)
    return replace(found, archive=covered, complete=len(names))

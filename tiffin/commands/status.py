"""tiffin status: every job's verdict, read from its target alone (SPEC §7).

The jobs are a config's (each its target, label, WHAT and source), or those a target named
on the command line holds (one per label and WHAT, named LABEL-WHAT). Each target is listed
once; one that cannot be reached makes each of its jobs FAILED with the reason, and the
others are still shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tiffin.catalog.backup import kind_of
from tiffin.catalog.watch import (
    FAILED,
    OK,
    JobStatus,
    Shelf,
    Wanted,
    Window,
    look,
    span,
    unreachable,
)
from tiffin.commands import binlogcycle, recoverable
from tiffin.errors import TiffinError, os_error_text
from tiffin.job import BackupJob, BinlogJob, TargetOptions, TargetURL
from tiffin.sources.identity import identity, key
from tiffin.targets import connected

NONE = "—"  # a cell with nothing to show (no backup, no drill, no archive yet)


@dataclass(frozen=True)
class Place:
    """A target to read, and the jobs to look for there (empty: every label and WHAT)."""

    url: TargetURL
    options: TargetOptions
    jobs: tuple[Wanted, ...] = ()


def wanted(name: str, job: BackupJob | BinlogJob) -> Wanted:
    """Given a config job and its name, return what to look for at its target."""
    if isinstance(job, BinlogJob):  # its archive, PATH/LABEL.binlog/ (SPEC §6)
        return Wanted(name, job.label, binlogcycle.KIND, binlogcycle.KIND)
    what = job.source.what
    return Wanted(name, job.label, kind_of(what), what, key(identity(job.source)))


def places_of(jobs: Sequence[tuple[str, BackupJob | BinlogJob]]) -> list[Place]:
    """Given a config's jobs, return their targets, each once, with the jobs it holds."""
    found: dict[tuple[TargetURL, TargetOptions], list[Wanted]] = {}
    for name, job in jobs:
        found.setdefault((job.target, job.target_options), []).append(wanted(name, job))
    return [Place(url, opts, tuple(ws)) for (url, opts), ws in found.items()]


def _windows(url: TargetURL, options: TargetOptions) -> Callable[[Shelf, Wanted], Window | None]:
    """Return what gives status a job's archive window: WAL for base backups, binary logs
    for mysql backups (each says None for the others)."""
    wal = recoverable.status_window(url, options)
    binlogs = binlogcycle.status_window(url, options)
    return lambda shelf, w: wal(shelf, w) or binlogs(shelf, w)


def gather(
    places: Sequence[Place],
    now: datetime,
    max_age: float,
    history: int = 0,
    label: str | None = None,
) -> list[JobStatus]:
    """Given the places to read, the time now, --max-age in seconds, how many backups per job
    to chart and a label to keep to (target form only), return each job's status in order.
    Never raises for a target: what cannot be read is its jobs' FAILED verdict."""
    found: list[JobStatus] = []
    for place in places:
        where = place.url.redacted()
        jobs = list(place.jobs)
        try:
            with connected(place.url, place.options) as target:
                shelf = Shelf(target, target.list(), _windows(place.url, place.options))
                if not place.jobs:
                    jobs = [w for w in shelf.groups() if label is None or w.label == label]
                    if not jobs:
                        found.append(
                            unreachable(Wanted(where, label or "", "", None), where, nothing(label))
                        )
                for w in jobs:
                    found.append(_one(shelf, w, place, now, max_age, history))
        except (TiffinError, OSError) as exc:
            reason = f"{where} cannot be read: {_text(exc)}"
            done = {s.job for s in found}
            fallback = jobs or [Wanted(where, label or "", "", None)]
            found += [unreachable(w, where, reason) for w in fallback if w.job not in done]
    return found


def nothing(label: str | None) -> str:
    return f"it holds no backup of the label {label}" if label else "it holds no backup"


def _one(
    shelf: Shelf, w: Wanted, place: Place, now: datetime, max_age: float, history: int
) -> JobStatus:
    where = place.url.redacted()
    try:
        if w.kind == binlogcycle.KIND:
            return binlogcycle.archive_status(shelf, w, place.url, place.options, now, max_age)
        return look(shelf, w, where, now, max_age, history)
    except (TiffinError, OSError) as exc:  # a manifest or record that could not be read
        return unreachable(w, where, f"{where} cannot be read: {_text(exc)}")


def _text(exc: BaseException) -> str:
    return os_error_text(exc) if isinstance(exc, OSError) else str(exc)


# ---------------------------------------------------------------- output


def plain(text: str) -> str:
    """Given text from a target (a name, a reason), return it safe for a terminal: every
    character that is not printable (escape sequences, line breaks) shown as an escape."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def size_text(n: int | None) -> str:
    """Given a byte count, return it short: 812 B, 1.4 KiB, 23.0 MiB."""
    if n is None:
        return NONE
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def change_text(s: JobStatus) -> str:
    c = s.change
    return NONE if c is None else f"{c * 100:+.1f}%"


def drill_text(s: JobStatus) -> str:
    d = s.drill
    if d is None:
        return NONE
    when = d.drilled_at.strftime("%Y-%m-%d %H:%M") if d.drilled_at else "?"
    return f"{'passed' if d.passed else 'FAILED'} {when}"


def archive_text(s: JobStatus) -> str:
    w = s.archive
    if w is None:
        return NONE
    return f"{w.first:%Y-%m-%d %H:%M} to {w.last:%Y-%m-%d %H:%M}"


HEAD = ("JOB", "VERDICT", "NEWEST", "AGE", "SIZE", "CHANGE", "LAST DRILL", "ARCHIVE")


def cells(s: JobStatus) -> tuple[str, ...]:
    """Given a job's status, return its row of the table, each cell plain text."""
    return (
        s.job,
        s.verdict,
        s.newest.name if s.newest else NONE,
        span(s.age_seconds) if s.age_seconds is not None else NONE,
        size_text(s.newest.size if s.newest else None),
        change_text(s),
        drill_text(s),
        archive_text(s),
    )


def table(statuses: Sequence[JobStatus]) -> list[str]:
    """Given the jobs' statuses, return the lines status prints: an aligned table, the
    reasons of each verdict that is not OK, and a count of verdicts."""
    rows = [HEAD, *(tuple(plain(c) for c in cells(s)) for s in statuses)]
    widths = [max(len(r[c]) for r in rows) for c in range(len(HEAD))]
    lines = ["  ".join(cell.ljust(widths[c]) for c, cell in enumerate(r)).rstrip() for r in rows]
    for s in statuses:
        lines += [f"{plain(s.verdict)} {plain(s.job)}: {plain(reason)}" for reason in s.reasons]
    counts = {v: sum(1 for s in statuses if s.verdict == v) for v in (OK, "STALE", FAILED)}
    jobs = "1 job" if len(statuses) == 1 else f"{len(statuses)} jobs"
    lines.append(f"{jobs}: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + ".")
    return lines


def as_json(statuses: Sequence[JobStatus]) -> str:
    """Given the jobs' statuses, return `status --json`: an array, one object per job."""
    return json.dumps([s.to_json() for s in statuses], indent=2)


def problem(statuses: Sequence[JobStatus]) -> str | None:
    """Given the jobs' statuses, return the sentence status writes on stderr when it exits 1,
    or None when every verdict is OK."""
    if all_ok(statuses):
        return None
    if not statuses:
        return "status found no job to check"
    bad = [s for s in statuses if s.verdict != OK]
    named = ", ".join(f"{plain(s.job)} {plain(s.verdict)}" for s in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return f"{len(bad)} of {len(statuses)} jobs not OK: {named}{more}"


def all_ok(statuses: Sequence[JobStatus]) -> bool:
    return bool(statuses) and all(s.verdict == OK for s in statuses)

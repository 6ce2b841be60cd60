"""What `tiffin status` shows of each job, read from its target alone (SPEC §7): no local
state, so that any machine that can reach the targets sees the same verdicts.

Per job: its newest complete backup (name, size, age and change from the one before), its
last drill (NAME.drill.json), its archive window, and a verdict. A target's listing is read
once and shared by the jobs it holds; manifests are read newest first and only as far as
needed: the newest and previous complete backup of the job (and, for the page's charts, up
to HISTORY more), so a history of thousands of backups costs one listing and a few reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tiffin.catalog.backup import COMPLETE, PARTIAL, Backup, iso
from tiffin.catalog.drillrecord import Drilled, read_record
from tiffin.catalog.holdings import VANISHED, read_manifest, survey
from tiffin.catalog.manifest import Manifest
from tiffin.catalog.naming import DRILL_SUFFIX
from tiffin.errors import BackupFailed, NotFound
from tiffin.sources.identity import key_of
from tiffin.targets.base import Entry, Target

OK, STALE, FAILED = "OK", "STALE", "FAILED"
HISTORY = 90  # complete backups per job whose size and duration the page charts
MAX_AGE = 26 * 3600.0  # --max-age's default: a daily backup that is a little late is fine


@dataclass(frozen=True)
class Wanted:
    """One job to look for at a target: its backups are those of LABEL whose names tell KIND
    (sql, data, sqlite), whose manifest records WHAT (None: any) and the source whose
    identity key is SOURCE (None: any; a manifest that records none matches every source)."""

    job: str
    label: str
    kind: str
    what: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class Window:
    """The span of time a point-in-time archive covers: any second from FIRST to LAST."""

    first: datetime
    last: datetime


@dataclass(frozen=True)
class Point:
    """One complete backup on the page's charts: when, its stored size, how long it took."""

    created: datetime
    size: int
    seconds: float | None


@dataclass(frozen=True)
class JobStatus:
    job: str
    target: str  # its URL without password
    label: str
    what: str
    verdict: str
    reasons: tuple[str, ...]
    newest: Backup | None = None
    finished: datetime | None = None
    age_seconds: float | None = None
    previous: Backup | None = None
    drill: Drilled | None = None
    archive: Window | None = None
    history: tuple[Point, ...] = ()
    complete: int = 0  # complete backups of the job that the listing shows

    @property
    def change(self) -> float | None:
        """The newest backup's size relative to the previous one's (0.1: 10 % larger)."""
        if self.newest is None or self.previous is None or not self.previous.size:
            return None
        return self.newest.size / self.previous.size - 1

    def to_json(self) -> dict[str, Any]:
        """Return what `status --json` shows of it (docs/status.md: the stable fields)."""
        n, p, d, w = self.newest, self.previous, self.drill, self.archive
        return {
            "job": self.job,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "target": self.target,
            "label": self.label,
            "what": self.what or None,
            "newest": n.name if n else None,
            "created": iso(n.created) if n else None,
            "finished": iso(self.finished) if self.finished else None,
            "size": n.size if n else None,
            "age_seconds": round(self.age_seconds) if self.age_seconds is not None else None,
            "previous": p.name if p else None,
            "previous_size": p.size if p else None,
            "change": round(self.change, 6) if self.change is not None else None,
            "complete": self.complete,
            "drill": None
            if d is None
            else {
                "name": d.name,
                "drilled_at": iso(d.drilled_at) if d.drilled_at else None,
                "passed": d.passed,
                "reason": d.reason,
            },
            "archive": None if w is None else {"first": iso(w.first), "last": iso(w.last)},
        }


def archive_window(target: Target, entries: list[Entry], label: str) -> Window | None:
    """Given a target, its listing and a label, return the window its point-in-time archive
    (WAL or binary logs, SPEC §6) covers, or None when it holds none. The archives are being
    built: until they land this returns None, which status shows as "—"."""
    return None


class Shelf:
    """One target's listing, read once, with the manifests read from it kept."""

    def __init__(
        self,
        target: Target,
        entries: list[Entry],
        windows: Callable[[Shelf, Wanted], Window | None] | None = None,
    ) -> None:
        self.target = target
        self.entries = entries
        self.windows = windows  # a job's archive window, read by the caller (SPEC §6)
        self.items = survey(target, entries, read=False)
        self.drills = {
            e.name[: -len(DRILL_SUFFIX)]: e
            for e in entries
            if e.name.endswith(DRILL_SUFFIX) and not e.partial
        }
        self._read: dict[str, tuple[Manifest | None, str]] = {}

    def manifest(self, name: str) -> tuple[Manifest | None, str]:
        """Return NAME's manifest, or None and why it cannot be read (a TargetError rises)."""
        if name not in self._read:
            try:
                self._read[name] = (read_manifest(self.target, name), "")
            except NotFound:
                self._read[name] = (None, VANISHED)
            except BackupFailed as exc:  # IntegrityError: not valid
                self._read[name] = (None, str(exc))
        return self._read[name]

    def groups(self) -> list[Wanted]:
        """Return a job for each label and kind the target holds, named LABEL-WHAT (the WHAT
        of its newest readable manifest, or what the names tell), by name."""
        found: dict[tuple[str, str], str | None] = {}
        for b in self.items:
            key = (b.label, b.kind)
            if found.get(key) is None and b.complete:
                m, _ = self.manifest(b.name)
                found[key] = m.what if m else None
            found.setdefault(key, None)
        wanted = [
            Wanted(f"{label}-{what or kind}", label, kind, what)
            for (label, kind), what in found.items()
        ]
        return sorted(wanted, key=lambda w: w.job)


def _when(text: str) -> datetime | None:
    """Given a manifest's ISO 8601 time, return it aware in UTC, or None if it is no time."""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.astimezone(UTC) if t.tzinfo else None


def _seconds(m: Manifest) -> float | None:
    start, end = _when(m.started), _when(m.finished)
    return (end - start).total_seconds() if start and end and end >= start else None


def _belongs(m: Manifest, w: Wanted) -> bool:
    if w.what is not None and m.what != w.what:
        return False
    source = key_of(m.source)
    return w.source is None or source is None or source == w.source


def look(
    shelf: Shelf, w: Wanted, target: str, now: datetime, max_age: float, history: int = 0
) -> JobStatus:
    """Given a target's shelf, a job, the target's URL without password, the time now,
    --max-age in seconds and how many backups to chart, return the job's status. Raise
    TargetError if a manifest or drill record cannot be read from the target."""
    items = [b for b in shelf.items if b.label == w.label and b.kind == w.kind]
    newest: Backup | None = None
    previous: Backup | None = None
    failed_attempt = ""
    points: list[Point] = []
    for b in items:
        if b.state == PARTIAL:  # a run in progress (or one killed): not judged here
            continue
        if newest is not None and previous is not None and len(points) >= history:
            break
        m, why = shelf.manifest(b.name) if b.state == COMPLETE else (None, b.problem)
        if m is not None and not _belongs(m, w):
            continue
        if m is None:
            if newest is None and not failed_attempt:
                failed_attempt = f"its newest backup {b.name} is {_state(b, why)}: {why}"
            continue
        b = Backup(
            b.name, b.label, m.what, b.created, COMPLETE, b.modified, key_of(m.source), m.size, m
        )
        if newest is None:
            newest = b
        elif previous is None:
            previous = b
        if len(points) < history:
            points.append(Point(b.created, m.size, _seconds(m)))
    finished = (_when(newest.manifest.finished) if newest.manifest else None) if newest else None
    finished = finished or (newest.created if newest else None)
    age = (now - finished).total_seconds() if finished else None
    drill = last_drill(shelf, items, w)
    verdict, reasons = judge(newest, age, failed_attempt, drill, max_age)
    return JobStatus(
        job=w.job,
        target=target,
        label=w.label,
        what=newest.what if newest else (w.what or w.kind),
        verdict=verdict,
        reasons=reasons,
        newest=newest,
        finished=finished,
        age_seconds=age,
        previous=previous,
        drill=drill,
        archive=shelf.windows(shelf, w)
        if shelf.windows
        else archive_window(shelf.target, shelf.entries, w.label),
        history=tuple(reversed(points)),
        complete=sum(1 for b in items if b.complete),
    )


def _state(b: Backup, why: str) -> str:
    """Given a backup listed with a manifest that could not be read, and why, or one listed
    without, return what it is: damaged, incomplete (its manifest vanished) or its state."""
    if b.state != COMPLETE:
        return str(b.state)
    return "incomplete" if why == VANISHED else "damaged"


def last_drill(shelf: Shelf, items: Iterable[Backup], w: Wanted) -> Drilled | None:
    """Return the job's last drill: the newest record (by when the target says it was
    written, else by its backup's name) of one of its backups, or None if none was drilled."""
    order = {b.name: i for i, b in enumerate(items)}
    drilled = [n for n in shelf.drills if n in order]
    drilled.sort(key=lambda n: (shelf.drills[n].mtime or 0.0, -order[n]), reverse=True)
    for name in drilled:
        m, _ = shelf.manifest(name)
        if m is not None and not _belongs(m, w):
            continue
        try:
            return read_record(shelf.target, name)
        except NotFound:  # removed with its backup since the listing
            continue
    return None


def judge(
    newest: Backup | None,
    age: float | None,
    failed_attempt: str,
    drill: Drilled | None,
    max_age: float,
) -> tuple[str, tuple[str, ...]]:
    """Given a job's newest complete backup, its age in seconds, why its newest attempt
    failed ("" if it did not), its last drill and --max-age, return its verdict and the
    reasons for it. FAILED: no complete backup, or the newest attempt or the last drill
    failed; STALE: the newest complete backup is older than MAX_AGE; else OK. Pure."""
    failed: list[str] = []
    if newest is None:
        failed.append("it has no complete backup")
    if failed_attempt:
        failed.append(failed_attempt)
    if drill is not None and not drill.passed:
        when = f" on {iso(drill.drilled_at)}" if drill.drilled_at else ""
        failed.append(
            drill.problem or f"its last drill, of {drill.name}{when}, failed: {drill.reason}"
        )
    stale = age is not None and age > max_age
    if stale:
        failed.append(f"its newest complete backup is {span(age or 0)} old, over {span(max_age)}")
    if failed:
        return (FAILED if len(failed) > stale else STALE), tuple(failed)
    return OK, ()


def unreachable(w: Wanted, target: str, reason: str) -> JobStatus:
    """Return the status of a job whose target could not be read: FAILED, and why."""
    return JobStatus(w.job, target, w.label, w.what or w.kind, FAILED, (reason,))


def span(seconds: float) -> str:
    """Given seconds, return them as a person reads a duration: 45s, 3h 12m, 2d 4h. Pure."""
    s = int(abs(seconds))
    sign = "-" if seconds < 0 else ""
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m"
    if s < 86400:
        return f"{sign}{s // 3600}h {s % 3600 // 60}m"
    return f"{sign}{s // 86400}d {s % 86400 // 3600}h"

"""PostgreSQL's WAL file names, pure: what a name is, which segment holds an LSN, the chain of
segments a recovery reads across timelines, its first gap, and what no kept backup needs.

A segment is named TTTTTTTTLLLLLLLLSSSSSSSS (timeline, then the segment number split in a
"log" and a segment within it, 2^32 bytes of WAL per log). Beside segments the archive holds
TTTTTTTT.history (how a timeline forked from its parents), SEGMENT.OOOOOOOO.backup (a base
backup's start and stop, written by pg_backup_stop) and SEGMENT.partial (the last, unfinished
segment of a timeline a standby left when it was promoted).

Recovery reads a segment from the newest timeline of the target's history whose start lies at
or before it (PostgreSQL's XLogFileReadAnyTLI): the segment holding a switch point is read
from the new timeline, whose file holds the old timeline's WAL up to that point.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

SEGMENT, HISTORY, BACKUP, PARTIAL = "segment", "history", "backup", "partial"
DEFAULT_SEG_SIZE = 16 << 20
LOG_BYTES = 1 << 32  # WAL bytes per "log", the middle eight digits of a segment name
MAX_TLI = 0xFFFFFFFF

_SEG = r"(?P<tli>[0-9A-F]{8})(?P<log>[0-9A-F]{8})(?P<seg>[0-9A-F]{8})"
_PATTERNS = (
    (SEGMENT, re.compile(rf"^{_SEG}\Z")),
    (PARTIAL, re.compile(rf"^{_SEG}\.partial\Z")),
    (BACKUP, re.compile(rf"^{_SEG}\.(?P<offset>[0-9A-F]{{8}})\.backup\Z")),
    (HISTORY, re.compile(r"^(?P<tli>[0-9A-F]{8})\.history\Z")),
)
_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})\Z")


@dataclass(frozen=True, order=True)
class WalFile:
    """One archived file's name, parsed. `log` and `seg` are None for a .history file; the
    pair (log, seg) orders segments whatever the segment size."""

    name: str
    kind: str
    tli: int
    log: int | None = None
    seg: int | None = None

    def segno(self, seg_size: int = DEFAULT_SEG_SIZE) -> int | None:
        """Return the segment number (LSN // seg_size) of a segment-bound file, else None."""
        if self.log is None or self.seg is None:
            return None
        return self.log * (LOG_BYTES // seg_size) + self.seg


@dataclass(frozen=True)
class Timeline:
    """One timeline of a history: WAL from BEGIN (an LSN; 0 for the first) to END (the switch
    point to the next one; None for the newest, still open)."""

    tli: int
    begin: int
    end: int | None


def parse(name: str) -> WalFile | None:
    """Given a file name, return it parsed, or None if it is not a WAL file PostgreSQL
    archives (segment, .history, .backup or .partial). Timeline 0 is no timeline."""
    for kind, pattern in _PATTERNS:
        m = pattern.match(name)
        if m is None:
            continue
        tli = int(m["tli"], 16)
        if tli == 0:
            return None
        if kind == HISTORY:
            return WalFile(name, kind, tli)
        return WalFile(name, kind, tli, int(m["log"], 16), int(m["seg"], 16))
    return None


def check_seg_size(seg_size: int) -> int:
    """Return SEG_SIZE if it is a WAL segment size PostgreSQL allows (a power of two from
    1 MiB to 1 GiB); raise ValueError otherwise."""
    if seg_size < 1 << 20 or seg_size > 1 << 30 or seg_size & (seg_size - 1):
        raise ValueError(f"{seg_size} is not a WAL segment size (a power of two, 1 MiB-1 GiB)")
    return seg_size


def segment_name(tli: int, segno: int, seg_size: int = DEFAULT_SEG_SIZE) -> str:
    """Given a timeline, a segment number and the segment size, return the segment's name."""
    per_log = LOG_BYTES // check_seg_size(seg_size)
    return f"{tli:08X}{segno // per_log:08X}{segno % per_log:08X}"


def history_name(tli: int) -> str:
    """Given a timeline, return the name of its history file."""
    return f"{tli:08X}.history"


def parse_lsn(text: str) -> int:
    """Given an LSN as PostgreSQL prints it (X/Y, hex), return it as a number. Raise
    ValueError if it is not one."""
    m = _LSN.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not an LSN (like 0/3000028)")
    return (int(m[1], 16) << 32) | int(m[2], 16)


def format_lsn(lsn: int) -> str:
    """Given an LSN as a number, return it as PostgreSQL prints it."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def segno_of(lsn: int, seg_size: int = DEFAULT_SEG_SIZE) -> int:
    """Given an LSN and the segment size, return the number of the segment holding it."""
    return lsn // check_seg_size(seg_size)


def segment_of(tli: int, lsn: int, seg_size: int = DEFAULT_SEG_SIZE) -> str:
    """Given a timeline, an LSN and the segment size, return the name of its segment."""
    return segment_name(tli, segno_of(lsn, seg_size), seg_size)


def parse_history(tli: int, text: str) -> list[Timeline]:
    """Given a timeline and the text of its .history file, return its timelines oldest first,
    ending with TLI itself (open). Raise ValueError if the text is malformed."""
    found: list[Timeline] = []
    begin = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 2)
        if len(fields) < 2 or not fields[0].isdigit():
            raise ValueError(f"a line of {history_name(tli)} is malformed: {line[:80]!r}")
        parent, end = int(fields[0]), parse_lsn(fields[1])
        if parent >= tli or (found and parent <= found[-1].tli) or end < begin:
            raise ValueError(f"{history_name(tli)} is not in order: {line[:80]!r}")
        found.append(Timeline(parent, begin, end))
        begin = end
    found.append(Timeline(tli, begin, None))
    return found


def first_timeline(tli: int = 1) -> list[Timeline]:
    """Return the history of a timeline that forked from none."""
    return [Timeline(tli, 0, None)]


def timeline_for(segno: int, history: list[Timeline], seg_size: int = DEFAULT_SEG_SIZE) -> int:
    """Given a segment number and a history (oldest first), return the timeline recovery
    reads that segment from: the newest whose beginning lies in or before it."""
    for t in reversed(history):
        if segno_of(t.begin, seg_size) <= segno:
            return t.tli
    return history[0].tli


def chain(
    start_lsn: int, end_lsn: int, history: list[Timeline], seg_size: int = DEFAULT_SEG_SIZE
) -> list[str]:
    """Given a start and an end LSN and the history recovery follows, return, in order, the
    names of the segments recovery reads from START to END inclusive."""
    first, last = segno_of(start_lsn, seg_size), segno_of(end_lsn, seg_size)
    return [
        segment_name(timeline_for(n, history, seg_size), n, seg_size)
        for n in range(first, last + 1)
    ]


def first_gap(archived: Iterable[str], needed: Iterable[str]) -> str | None:
    """Given the names archived and the chain needed (in order), return the first needed name
    not archived, or None if there is none."""
    have = set(archived)
    return next((name for name in needed if name not in have), None)


def reach(
    archived: Iterable[str],
    start_tli: int,
    start_lsn: int,
    history: list[Timeline],
    seg_size: int = DEFAULT_SEG_SIZE,
) -> str | None:
    """Given the names archived, a backup's start (timeline, LSN) and the history to follow,
    return the last segment of the unbroken chain from the start, or None if even the first
    is missing. A history that does not hold START_TLI reaches nothing past the start's
    own timeline (its later timelines forked elsewhere)."""
    have = set(archived)
    tlis = [t.tli for t in history]
    history = history[tlis.index(start_tli) :] if start_tli in tlis else first_timeline(start_tli)
    segno, last = segno_of(start_lsn, seg_size), None
    while True:
        name = segment_name(timeline_for(segno, history, seg_size), segno, seg_size)
        if name not in have:
            return last
        last, segno = name, segno + 1


def segment_bound(archived: Iterable[str]) -> list[WalFile]:
    """Given names, return the WAL files among them bound to a segment (segments, .partial,
    .backup), ordered by segment then timeline."""
    files = [f for f in map(parse, archived) if f is not None and f.kind != HISTORY]
    return sorted(files, key=lambda f: (f.log, f.seg, f.tli, f.name))


def newest_timeline(archived: Iterable[str]) -> int | None:
    """Given names, return the newest timeline any WAL file among them is on, or None."""
    tlis = [f.tli for f in map(parse, archived) if f is not None]
    return max(tlis) if tlis else None


def prunable(
    archived: Iterable[str],
    kept: Iterable[tuple[int, int]],
    seg_size: int = DEFAULT_SEG_SIZE,
) -> list[str]:
    """Given the names archived and each kept base backup's (timeline, start LSN), return the
    names no kept backup needs: segments, .partial and .backup files wholly before the
    oldest kept start, on any timeline (recovery from a backup never reads before its
    start). History files are always kept (they are tiny, and every later timeline's
    recovery reads its parents'). With no kept backup nothing is prunable: an archive
    without a base backup is pruned by no rule. Names not of WAL files are never returned."""
    starts = [segno_of(lsn, seg_size) for _, lsn in kept]
    if not starts:
        return []
    oldest = min(starts)
    out: list[str] = []
    for f in segment_bound(archived):
        segno = f.segno(seg_size)
        if segno is not None and segno < oldest:
            out.append(f.name)
    return out

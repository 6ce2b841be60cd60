"""Point-in-time recovery of PostgreSQL, pure: the base backups a target holds, which one a
recovery starts from, whether the WAL archive carries it to the target, and the window the
archive covers (SPEC §6). The engine reads the target; nothing here does.

A base backup holds the WAL from its start to its stop (pg_basebackup -X fetch), so it is
recoverable to its own end without any archive. Past that end, recovery reads the archive's
segments in order along the newest timeline's history (tiffin/catalog/walnames.py), and a
missing one before the target is a gap: refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from tiffin.catalog import walnames
from tiffin.catalog.backup import Backup
from tiffin.catalog.walnames import Timeline


class Refused(ValueError):
    """A recovery that cannot be made as asked; str() is the sentence the user reads."""


@dataclass(frozen=True)
class Base:
    """A complete base backup, as its manifest records it."""

    name: str
    label: str
    tli: int
    start_lsn: int
    stop_lsn: int
    stop_time: datetime
    seg_size: int
    system: str

    @property
    def start_segno(self) -> int:
        return walnames.segno_of(self.start_lsn, self.seg_size)

    @property
    def stop_segno(self) -> int:
        return walnames.segno_of(self.stop_lsn, self.seg_size)


def utc(text: str) -> datetime:
    """Given an ISO 8601 UTC time as manifests write it, return it (aware)."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def shown(t: datetime) -> str:
    """Given a time, return it as the user types it: YYYY-MM-DD HH:MM:SS UTC."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def base_of(b: Backup) -> Base | None:
    """Given a backup with its manifest read, return it as a base backup, or None if it is not
    a complete one or its manifest lacks what recovery needs."""
    m = b.manifest
    if not b.complete or m is None or m.what != "pgbase":
        return None
    s = m.source
    try:
        return Base(
            name=b.name,
            label=b.label,
            tli=int(s["timeline"]),
            start_lsn=walnames.parse_lsn(str(s["start_lsn"])),
            stop_lsn=walnames.parse_lsn(str(s["stop_lsn"])),
            stop_time=utc(str(s["stop_time"])),
            seg_size=walnames.check_seg_size(
                int(s.get("wal_segment_size", walnames.DEFAULT_SEG_SIZE))
            ),
            system=str(s.get("system_identifier", "")),
        )
    except (KeyError, TypeError, ValueError):
        return None


def pick(bases: list[Base], name: str, to_time: datetime | None) -> Base:
    """Given the complete base backups of one label (any order), NAME (or 'latest') and the
    target time, return the base backup to start from: NAME, else the newest that finished
    at or before TO_TIME (the newest of all without one). Raise Refused if the time is
    before it (or before every one), or if there is none."""
    if not bases:
        raise Refused("there is no complete base backup here (backup pgsql --physical)")
    ordered = sorted(bases, key=lambda b: (b.stop_time, b.stop_lsn))
    if name != "latest":
        chosen = next((b for b in ordered if b.name == name), None)
        if chosen is None:
            raise Refused(f"{name} is not a complete base backup")
        if to_time is not None and to_time < chosen.stop_time:
            raise Refused(
                f"{shown(to_time)} is before {name} finished ({shown(chosen.stop_time)}): "
                "give an older base backup, or latest"
            )
        return chosen
    if to_time is None:
        return ordered[-1]
    fit = [b for b in ordered if b.stop_time <= to_time]
    if not fit:
        raise Refused(
            f"{shown(to_time)} is before the first base backup, which finished at "
            f"{shown(ordered[0].stop_time)}"
        )
    return fit[-1]


@dataclass(frozen=True)
class Reach:
    """How far the archive carries a base backup: the last segment of the unbroken chain from
    its start (None: it holds none past the backup's own WAL), that segment's number and push
    time, and the first segment missing before newer ones on the same path (None: no gap)."""

    last: str | None
    last_segno: int
    end_time: datetime
    gap: str | None
    gap_segno: int | None


def reach(base: Base, archived: Mapping[str, float | None], history: list[Timeline]) -> Reach:
    """Given a base backup, the archive's WAL names with their push times (Unix seconds; None
    if unknown) and the history recovery follows, return how far the archive carries it."""
    seg = base.seg_size
    own = {
        walnames.segment_name(walnames.timeline_for(n, history, seg), n, seg)
        for n in range(base.start_segno, base.stop_segno + 1)
    }
    have = set(archived) | own
    last = walnames.reach(have, base.tli, base.start_lsn, history, seg)
    parsed = walnames.parse(last) if last else None
    found = parsed.segno(seg) if parsed else None
    # The backup's own WAL reaches its stop whatever the archive holds of it.
    last_segno = max(found, base.stop_segno) if found is not None else base.stop_segno
    if found is None or found < base.stop_segno or last not in archived:
        last = None  # the archive holds nothing past the backup's own WAL
    on_path = [
        f
        for f in walnames.segment_bound(archived)
        if f.kind == walnames.SEGMENT
        and (n := f.segno(seg)) is not None
        and n > last_segno
        and walnames.timeline_for(n, history, seg) == f.tli
    ]
    gap_segno = last_segno + 1 if on_path else None
    gap = (
        walnames.segment_name(walnames.timeline_for(gap_segno, history, seg), gap_segno, seg)
        if gap_segno is not None
        else None
    )
    pushed = archived.get(last) if last else None
    end = datetime.fromtimestamp(pushed, UTC) if pushed else base.stop_time
    return Reach(last, last_segno, max(end, base.stop_time), gap, gap_segno)


def check_target(
    base: Base,
    got: Reach,
    archived: Mapping[str, float | None],
    history: list[Timeline],
    to_time: datetime | None,
    to_lsn: int | None,
) -> None:
    """Raise Refused unless the recovery of BASE to the target (time, LSN, or the end of the
    archive when neither) lies in the archive's window with no gap before it."""
    seg = base.seg_size
    needed_segno: int | None
    if to_lsn is not None:
        if to_lsn < base.stop_lsn:
            raise Refused(
                f"{walnames.format_lsn(to_lsn)} is before {base.name} is consistent "
                f"({walnames.format_lsn(base.stop_lsn)})"
            )
        end = (got.last_segno + 1) * seg
        if walnames.segno_of(to_lsn, seg) > got.last_segno and got.gap is None:
            raise Refused(
                f"{walnames.format_lsn(to_lsn)} is after the archive's end "
                f"({walnames.format_lsn(end)})"
            )
        needed_segno = walnames.segno_of(to_lsn, seg)
    elif to_time is not None:
        if to_time > got.end_time and got.gap is None:
            raise Refused(
                f"{shown(to_time)} is after the archive's end ({shown(got.end_time)}): "
                "the newest WAL archived is older"
            )
        later = [
            n
            for name, pushed in archived.items()
            if (f := walnames.parse(name)) is not None
            and f.kind == walnames.SEGMENT
            and (n := f.segno(seg)) is not None
            and n > base.stop_segno
            and walnames.timeline_for(n, history, seg) == f.tli
            and pushed is not None
            and datetime.fromtimestamp(pushed, UTC) > to_time
        ]
        needed_segno = min(later) if later else None
        if needed_segno is None:
            needed_segno = got.last_segno if got.gap is None else got.gap_segno or 0
    else:  # the end of the archive: past a gap, if there is one
        needed_segno = got.gap_segno if got.gap_segno is not None else got.last_segno
    if got.gap is not None and got.gap_segno is not None and got.gap_segno <= needed_segno:
        raise Refused(
            f"the WAL archive has a gap: {got.gap} is missing between {base.name} and the target"
        )


def window(
    bases: Iterable[Base], archived: Mapping[str, float | None], history: list[Timeline]
) -> tuple[datetime, datetime] | None:
    """Given a label's complete base backups, its archive (names and push times) and the
    newest timeline's history, return the window recovery can reach: from the end of the
    oldest base backup to the newest push the unbroken archive holds; None without base."""
    ends = [(b.stop_time, reach(b, archived, history).end_time) for b in bases]
    if not ends:
        return None
    return min(s for s, _ in ends), max(e for _, e in ends)

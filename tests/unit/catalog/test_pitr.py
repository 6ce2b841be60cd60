"""Which base backup a recovery starts from, and the refusals made before anything is
written: a target before the first base backup, after the archive's end, across a gap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiffin.catalog import pitr, walnames
from tiffin.catalog.pitr import Base, Refused

SEG = 16 << 20
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
HISTORY = walnames.first_timeline(1)


def base(name: str, start_seg: int, stop_seg: int, stop: datetime) -> Base:
    return Base(name, "ramen", 1, start_seg * SEG + 40, stop_seg * SEG + 256, stop, SEG, "1")


def archive(first: int, last: int, missing: tuple[int, ...] = ()) -> dict[str, float | None]:
    """Segments FIRST..LAST of timeline 1, segment N pushed at T0 + N minutes."""
    return {
        walnames.segment_name(1, n, SEG): (T0 + timedelta(minutes=n)).timestamp()
        for n in range(first, last + 1)
        if n not in missing
    }


def test_latest_before_a_time_is_the_newest_base_backup_that_finished_by_then() -> None:
    a, b = base("a", 2, 2, T0 + timedelta(minutes=2)), base("b", 6, 6, T0 + timedelta(minutes=6))
    assert pitr.pick([b, a], "latest", T0 + timedelta(minutes=5)) is a
    assert pitr.pick([a, b], "latest", T0 + timedelta(minutes=6)) is b
    assert pitr.pick([a, b], "latest", None) is b
    with pytest.raises(Refused, match="before the first base backup, which finished at 2026-12-03"):
        pitr.pick([a, b], "latest", T0)
    with pytest.raises(Refused, match="before b finished"):
        pitr.pick([a, b], "b", T0 + timedelta(minutes=4))
    with pytest.raises(Refused, match="no complete base backup"):
        pitr.pick([], "latest", None)


def test_a_target_after_the_archive_end_is_refused() -> None:
    b = base("a", 2, 2, T0 + timedelta(minutes=2))
    names = archive(2, 9)
    got = pitr.reach(b, names, HISTORY)
    assert got.last == walnames.segment_name(1, 9, SEG) and got.gap is None
    assert got.end_time == T0 + timedelta(minutes=9)
    pitr.check_target(b, got, names, HISTORY, T0 + timedelta(minutes=9), None)
    pitr.check_target(b, got, names, HISTORY, None, None)
    with pytest.raises(Refused, match="after the archive's end"):
        pitr.check_target(b, got, names, HISTORY, T0 + timedelta(minutes=10), None)
    with pytest.raises(Refused, match="after the archive's end"):
        pitr.check_target(b, got, names, HISTORY, None, 11 * SEG)
    with pytest.raises(Refused, match="before a is consistent"):
        pitr.check_target(b, got, names, HISTORY, None, 2 * SEG)


def test_a_gap_before_the_target_is_refused_one_after_it_is_not() -> None:
    b = base("a", 2, 3, T0 + timedelta(minutes=3))
    names = archive(2, 12, missing=(7,))
    got = pitr.reach(b, names, HISTORY)
    assert got.gap == walnames.segment_name(1, 7, SEG)
    with pytest.raises(Refused, match=f"gap: {got.gap} is missing between a and the target"):
        pitr.check_target(b, got, names, HISTORY, None, None)
    with pytest.raises(Refused, match="gap"):
        pitr.check_target(b, got, names, HISTORY, T0 + timedelta(minutes=9), None)
    pitr.check_target(b, got, names, HISTORY, T0 + timedelta(minutes=5, seconds=30), None)
    pitr.check_target(b, got, names, HISTORY, None, 6 * SEG + 5)


def test_a_base_backup_needs_no_archive_to_reach_its_own_end() -> None:
    b = base("a", 2, 3, T0 + timedelta(minutes=3))
    got = pitr.reach(b, {}, HISTORY)
    assert got.last is None and got.gap is None and got.end_time == b.stop_time
    pitr.check_target(b, got, {}, HISTORY, None, None)
    with pytest.raises(Refused, match="after the archive's end"):
        pitr.check_target(b, got, {}, HISTORY, b.stop_time + timedelta(seconds=1), None)


def test_the_window_runs_from_the_oldest_base_to_the_newest_push() -> None:
    a, b = base("a", 2, 2, T0 + timedelta(minutes=2)), base("b", 6, 6, T0 + timedelta(minutes=6))
    assert pitr.window([a, b], archive(2, 9), HISTORY) == (
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=9),
    )
    assert pitr.window([], archive(2, 9), HISTORY) is None


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Base], list[Base], dict[str, float | None], list]:
    """A random archive: a history of one to three timelines, the segments of each pushed
    (some missing), and base backups taken along it, of which a random non-empty few stay."""
    switches = sorted(draw(st.lists(st.integers(3, 60), max_size=2, unique=True)))
    newest = len(switches) + 1
    text = "".join(
        f"{n}\t{walnames.format_lsn(at * SEG + 100)}\tswitch\n"
        for n, at in enumerate(switches, start=1)
    )
    history = walnames.parse_history(newest, text) if switches else walnames.first_timeline(1)
    last = draw(st.integers(max(switches, default=3) + 1, 80))
    names: dict[str, float | None] = {}
    for n in range(0, last + 1):
        if draw(st.integers(0, 9)) == 0:
            continue  # a gap
        names[walnames.segment_name(walnames.timeline_for(n, history, SEG), n, SEG)] = float(n)
    for t in history[1:]:
        names[walnames.history_name(t.tli)] = 0.0
    starts = draw(st.lists(st.integers(1, last), min_size=1, max_size=5, unique=True))
    bases = []
    for i, s in enumerate(sorted(starts)):
        tli = walnames.timeline_for(s, history, SEG)
        bases.append(
            Base(
                f"b{i}",
                "ramen",
                tli,
                s * SEG + 40,
                s * SEG + 300,
                T0 + timedelta(minutes=s),
                SEG,
                "1",
            )
        )
    kept = [b for b in bases if draw(st.booleans())] or [bases[-1]]
    return bases, kept, names, history


@settings(max_examples=300, deadline=None)
@given(histories())
def test_prune_never_takes_what_a_kept_base_backup_needs(
    case: tuple[list[Base], list[Base], dict[str, float | None], list],
) -> None:
    _, kept, names, history = case
    gone = set(walnames.prunable(names, [(b.tli, b.start_lsn) for b in kept], SEG))
    left = {n: t for n, t in names.items() if n not in gone}
    for b in kept:
        assert pitr.reach(b, left, history) == pitr.reach(b, names, history)
    assert all(not n.endswith(".history") for n in gone)
    oldest = min(b.start_segno for b in kept)
    assert all((f := walnames.parse(n)) and (f.segno(SEG) or 0) < oldest for n in gone)

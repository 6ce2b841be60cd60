"""WAL file names: parsing, LSN arithmetic, the chain across timelines, and pruning that never
deletes a segment a kept backup needs, over random histories."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiffin.catalog import walnames as w

SEG_SIZES = st.sampled_from([1 << 20, 16 << 20, 64 << 20, 1 << 30])
LSNS = st.integers(0, (1 << 40) - 1)


def test_names_of_every_kind_parse() -> None:
    seg = w.parse("000000010000000A000000FF")
    assert seg == w.WalFile("000000010000000A000000FF", w.SEGMENT, 1, 10, 255)
    assert w.parse("00000002.history") == w.WalFile("00000002.history", w.HISTORY, 2)
    backup = w.parse("000000010000000000000003.00000028.backup")
    assert backup is not None and backup.kind == w.BACKUP and backup.seg == 3
    partial = w.parse("000000010000000000000005.partial")
    assert partial is not None and partial.kind == w.PARTIAL


@pytest.mark.parametrize(
    "name",
    [
        "",
        "00000001000000000000000",
        "0000000100000000000000001",
        "000000010000000000000001.zst",
        "00000000000000000000000A",
        "00000000.history",
        "0000000g0000000000000001",
        "../000000010000000000000001",
        "000000010000000000000001.backup",
        "RECOVERYXLOG",
    ],
)
def test_other_names_are_not_wal_files(name: str) -> None:
    assert w.parse(name) is None


@given(st.integers(1, w.MAX_TLI), st.integers(0, (1 << 40) - 1), SEG_SIZES)
def test_segment_names_round_trip(tli: int, lsn: int, seg_size: int) -> None:
    segno = w.segno_of(lsn, seg_size)
    parsed = w.parse(w.segment_name(tli, segno, seg_size))
    assert parsed is not None and parsed.tli == tli and parsed.segno(seg_size) == segno
    assert segno * seg_size <= lsn < (segno + 1) * seg_size


def test_lsns_parse_as_postgresql_prints_them() -> None:
    assert w.parse_lsn("0/3000028") == 0x3000028
    assert w.parse_lsn("1A/FF") == (0x1A << 32) | 0xFF
    assert w.format_lsn(w.parse_lsn("16/B374D848")) == "16/B374D848"
    assert w.segment_of(1, w.parse_lsn("1/2000060")) == "000000010000000100000002"
    with pytest.raises(ValueError, match="not an LSN"):
        w.parse_lsn("0x3000")


def test_a_history_file_gives_its_timelines_oldest_first() -> None:
    text = "1\t0/3000060\tno recovery target specified\n\n2\t0/5000000\tbefore 2026-12-03\n"
    assert w.parse_history(3, text) == [
        w.Timeline(1, 0, 0x3000060),
        w.Timeline(2, 0x3000060, 0x5000000),
        w.Timeline(3, 0x5000000, None),
    ]
    with pytest.raises(ValueError, match="malformed"):
        w.parse_history(3, "one\n")
    with pytest.raises(ValueError, match="not in order"):
        w.parse_history(2, "3\t0/1\tx\n")


def test_the_chain_reads_the_switch_segment_from_the_new_timeline() -> None:
    history = w.parse_history(2, "1\t0/3000060\tx\n")
    names = w.chain(0x1000028, 0x4000000, history)
    assert names == [
        "000000010000000000000001",
        "000000010000000000000002",
        "000000020000000000000003",
        "000000020000000000000004",
    ]
    assert w.first_gap(names[:2] + names[3:], names) == "000000020000000000000003"
    assert w.first_gap(names, names) is None
    assert w.reach(names, 1, 0x1000028, history) == "000000020000000000000004"
    assert w.reach(names[:1] + names[2:], 1, 0x1000028, history) == names[0]
    assert w.reach(names, 1, 0x7000000, history) is None


# A random archive: segments on a few timelines, each forking from the one before at a random
# point, some segments missing, and base backups started on random timelines and LSNs.
@st.composite
def histories(draw: st.DrawFn) -> tuple[list[str], list[tuple[int, int]], int]:
    seg_size = draw(SEG_SIZES)
    ntl = draw(st.integers(1, 4))
    switches = sorted(draw(st.lists(st.integers(1, 60), min_size=ntl - 1, max_size=ntl - 1)))
    names: set[str] = set()
    begin = 0
    for i in range(ntl):
        tli = i + 1
        end = switches[i] if i < len(switches) else 70
        for segno in range(begin, end + draw(st.integers(0, 3)) + 1):
            if draw(st.integers(0, 9)):  # one in ten missing
                names.add(w.segment_name(tli, segno, seg_size))
        if tli > 1:
            names.add(w.history_name(tli))
        if i < len(switches) and draw(st.booleans()):
            names.add(w.segment_name(tli, end, seg_size) + ".partial")
        begin = end
    kept: list[tuple[int, int]] = []
    for _ in range(draw(st.integers(0, 4))):
        tli = draw(st.integers(1, ntl))
        lo = 0 if tli == 1 else switches[tli - 2]
        hi = switches[tli - 1] if tli <= len(switches) else 70
        segno = draw(st.integers(lo, hi))
        kept.append((tli, segno * seg_size + draw(st.integers(0, seg_size - 1))))
        names.add(w.segment_name(tli, segno, seg_size) + ".00000028.backup")
    names.add("a-backup_2026-01-01_00:00:00_UTC.pgbase.tar.zst")
    return sorted(names), kept, seg_size


@settings(max_examples=200, deadline=None)
@given(histories())
def test_prune_never_deletes_a_file_a_kept_backup_needs(
    archive: tuple[list[str], list[tuple[int, int]], int],
) -> None:
    names, kept, seg_size = archive
    doomed = set(w.prunable(names, kept, seg_size))
    assert doomed <= set(names)
    assert not any(n.endswith(".history") or w.parse(n) is None for n in doomed)
    if not kept:
        assert doomed == set()
        return
    # Whatever timeline recovery follows, it reads segments from the backup's start on: every
    # archived segment-bound file at or after a kept start survives.
    oldest = min(w.segno_of(lsn, seg_size) for _, lsn in kept)
    for f in w.segment_bound(names):
        segno = f.segno(seg_size)
        assert segno is not None
        assert (f.name in doomed) == (segno < oldest)
    for tli, lsn in kept:
        chain = w.chain(lsn, 70 * seg_size, w.first_timeline(tli), seg_size)
        assert not doomed & set(chain)
        last = w.reach(names, tli, lsn, w.first_timeline(tli), seg_size)
        after = w.reach(sorted(set(names) - doomed), tli, lsn, w.first_timeline(tli), seg_size)
        assert last == after  # pruning shortens no kept backup's recoverable window


@given(LSNS, st.integers(0, 300), SEG_SIZES)
def test_the_chain_is_every_segment_between_in_order(start: int, n: int, seg_size: int) -> None:
    end = start + n * seg_size
    names = w.chain(start, end, w.first_timeline(), seg_size)
    files = [w.parse(n) for n in names]
    segnos = [f.segno(seg_size) for f in files if f is not None]
    assert segnos == list(range(w.segno_of(start, seg_size), w.segno_of(end, seg_size) + 1))

"""prune never removes a binary log a kept backup needs, and removes every one none needs."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from tiffin.catalog.binlogs import Start, first_missing, split_log
from tiffin.commands.binlogcycle import prunable

WHEN = datetime(2026, 12, 1, tzinfo=UTC)


def name(seq: int) -> str:
    return f"bin.{seq:06d}"


@given(
    archived=st.sets(st.integers(1, 60), max_size=40),
    kept=st.lists(st.integers(1, 70), max_size=6),
)
def test_prune_keeps_every_log_a_kept_backup_needs(archived, kept):
    names = [name(s) for s in sorted(archived)]
    starts = [Start(f"b{i}", WHEN, name(s), 4) for i, s in enumerate(kept)]
    gone = prunable(names, starts)
    assert set(gone) <= set(names)
    left = [n for n in names if n not in gone]
    for start in starts:
        needed = [n for n in names if split_log(n)[1] >= split_log(start.file)[1]]
        assert set(needed) <= set(left)  # nothing a kept backup replays from is removed
        # and its chain is exactly as whole as before the prune
        assert first_missing(left, start.file) == first_missing(names, start.file)
    if starts:
        oldest = min(kept)
        assert all(split_log(n)[1] < oldest for n in gone)
        assert all(split_log(n)[1] >= oldest for n in left)  # every unneeded one goes
    else:
        assert gone == []

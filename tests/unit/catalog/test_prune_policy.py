"""The prune policy (tiffin.catalog.retention.plan): restic's meaning, and properties over
many random sets."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiffin.catalog.backup import COMPLETE, DAMAGED, INCOMPLETE, PARTIAL, Backup
from tiffin.catalog.naming import make_name
from tiffin.catalog.retention import (
    PERIODS,
    Decision,
    plan,
)
from tiffin.errors import UsageError
from tiffin.job import Retention

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
COMPRESS = {"mysql": "gzip", "pgsql": "zstd", "data": "gzip", "sqlite": "none"}


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def backup(
    when: datetime | str,
    label: str = "ramen",
    what: str = "mysql",
    state: str = COMPLETE,
    modified: datetime | None = None,
) -> Backup:
    t = at(when) if isinstance(when, str) else when
    name = make_name(label, what, t, COMPRESS[what], False)
    shown = what if state == COMPLETE else {"mysql": "sql", "pgsql": "sql"}.get(what, what)
    return Backup(name, label, shown, t, state, modified)


def kept(decisions: list[Decision]) -> list[str]:
    return [d.backup.created.strftime("%Y-%m-%d %H:%M") for d in decisions if d.keep]


def reasons(decisions: list[Decision]) -> dict[str, tuple[str, ...]]:
    return {d.backup.created.strftime("%Y-%m-%d %H:%M"): d.reasons for d in decisions if d.keep}


# ---------------------------------------------------------------- restic's meaning, by example


def test_keep_last_keeps_the_n_newest():
    bs = [backup(f"2026-11-{d:02d} 03:00") for d in range(20, 28)]
    d = plan(bs, Retention(last=3), NOW)
    assert kept(d) == ["2026-11-27 03:00", "2026-11-26 03:00", "2026-11-25 03:00"]
    assert reasons(d)["2026-11-26 03:00"] == ("last #2",)


def test_keep_daily_keeps_the_newest_of_each_of_the_last_n_days_that_have_backups():
    bs = [
        backup("2026-11-27 23:00"),
        backup("2026-11-27 03:00"),
        backup("2026-11-25 12:00"),  # days without backups do not count: 26 is skipped
        backup("2026-11-25 01:00"),
        backup("2026-11-20 05:00"),
    ]
    d = plan(bs, Retention(daily=2), NOW)
    assert kept(d) == ["2026-11-27 23:00", "2026-11-25 12:00"]
    assert reasons(d)["2026-11-25 12:00"] == ("daily 2026-11-25",)


def test_fewer_periods_than_asked_keeps_the_oldest_too_as_restic_does():
    bs = [
        backup("2026-11-27 23:00"),
        backup("2026-11-27 03:00"),
        backup("2026-11-26 10:00"),
        backup("2026-11-26 09:00"),
    ]
    d = plan(bs, Retention(daily=7), NOW)
    assert kept(d) == ["2026-11-27 23:00", "2026-11-26 10:00", "2026-11-26 09:00"]
    assert reasons(d)["2026-11-26 09:00"] == ("oldest (daily 2026-11-26)",)


def test_weeks_are_iso_weeks_and_every_rule_that_keeps_a_backup_is_named():
    bs = [
        backup("2026-11-30 01:00"),  # Monday: 2026-W49
        backup("2026-11-29 22:00"),  # Sunday: 2026-W48
        backup("2026-11-27 22:00"),
        backup("2026-11-01 22:00"),  # 2026-W44
        backup("2025-12-31 22:00"),
    ]
    d = plan(bs, Retention(daily=2, weekly=2, monthly=2, yearly=3), NOW)
    r = reasons(d)
    assert r["2026-11-30 01:00"] == (
        "daily 2026-11-30",
        "weekly 2026-W49",
        "monthly 2026-11",
        "yearly 2026",
    )
    assert r["2026-11-29 22:00"] == ("daily 2026-11-29", "weekly 2026-W48")
    assert "2026-11-27 22:00" not in r and "2026-11-01 22:00" not in r
    # 2025-12-31 falls in ISO week 2026-W01; it is the newest of its month and of its year.
    assert r["2025-12-31 22:00"] == ("monthly 2025-12", "yearly 2025")
    line = next(x for x in d if x.keep).line(dry_run=True)
    assert line == (
        f"keep {bs[0].name}: daily 2026-11-30, weekly 2026-W49, monthly 2026-11, yearly 2026"
    )


def test_hourly_periods():
    bs = [backup("2026-11-28 11:50"), backup("2026-11-28 11:10"), backup("2026-11-28 10:59")]
    d = plan(bs, Retention(hourly=2), NOW)
    assert kept(d) == ["2026-11-28 11:50", "2026-11-28 10:59"]
    assert reasons(d)["2026-11-28 10:59"] == ("hourly 2026-11-28 10:00",)


def test_each_label_and_what_is_pruned_on_its_own():
    bs = [
        backup("2026-11-27 01:00", what="mysql"),
        backup("2026-11-26 01:00", what="mysql"),
        backup("2026-11-25 01:00", what="pgsql"),
        backup("2026-11-24 01:00", what="pgsql"),
        backup("2026-11-23 01:00", label="other", what="mysql"),
    ]
    d = plan(bs, Retention(last=1), NOW)
    assert kept(d) == ["2026-11-27 01:00", "2026-11-25 01:00", "2026-11-23 01:00"]


def test_incomplete_backups_do_not_count_and_go_once_a_day_old():
    bs = [
        backup("2026-11-28 11:00", state=INCOMPLETE),  # 1 hour old: may still be running
        backup("2026-11-27 11:30", state=PARTIAL),  # 24.5 hours old
        backup("2026-11-20 11:00", state=PARTIAL, modified=NOW - timedelta(hours=2)),
        backup("2026-11-26 01:00"),
        backup("2026-11-25 01:00"),
    ]
    d = plan(bs, Retention(last=1), NOW)
    assert kept(d) == ["2026-11-28 11:00", "2026-11-26 01:00", "2026-11-20 11:00"]
    r = {x.backup.created.strftime("%Y-%m-%d %H:%M"): x for x in d}
    assert "may still be running" in r["2026-11-28 11:00"].reasons[0]
    assert r["2026-11-27 11:30"].line(dry_run=True).startswith("would delete ")
    assert r["2026-11-25 01:00"].line(dry_run=False) == (
        f"deleted {r['2026-11-25 01:00'].name}: no rule keeps it"
    )


def test_a_damaged_backup_is_never_touched():
    bs = [backup("2026-11-26 01:00"), backup("2020-01-01 00:00", state=DAMAGED)]
    assert kept(plan(bs, Retention(last=1), NOW)) == ["2026-11-26 01:00", "2020-01-01 00:00"]


def test_a_policy_that_keeps_nothing_is_refused():
    with pytest.raises(UsageError, match="--keep-daily"):
        plan([backup("2026-11-26 01:00")], Retention(), NOW)


# ---------------------------------------------------------------- properties

RULE = re.compile(
    r"^(last #\d+|newest|(oldest \()?(hourly|daily|weekly|monthly|yearly) [0-9W: -]+\)?|"
    r".*may still be running|damaged .*)$"
)
START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN = int(timedelta(days=3 * 366).total_seconds())

LABELS, WHATS, STATES = (
    ("ramen", "udon"),
    ("mysql", "pgsql", "data"),
    (COMPLETE,) * 6
    + (
        INCOMPLETE,
        PARTIAL,
    ),
)


def decode(v: int) -> tuple[str, str, int, str]:
    """One backup from one integer (cheap to draw): its label, WHAT, time and state. Half the
    times cluster in the last 20 hours, so that many backups share an hour, a day, a week."""
    secs = SPAN - (v >> 7) % 40 * 1800 if v >> 6 & 1 else (v >> 7) % SPAN
    return LABELS[v & 1], WHATS[(v >> 1 & 3) % 3], secs, STATES[v >> 3 & 7]


one_backup = st.integers(0, 1 << 40).map(decode)
policy = st.builds(
    Retention,
    last=st.integers(0, 4),
    hourly=st.integers(0, 4),
    daily=st.integers(0, 8),
    weekly=st.integers(0, 5),
    monthly=st.integers(0, 13),
    yearly=st.integers(0, 3),
).filter(Retention.any)
scenario = st.tuples(
    st.lists(one_backup, min_size=1, max_size=40), policy, st.integers(0, 3 * 86400)
)
SETS_PER_EXAMPLE = 20
EXAMPLES = 520  # x 20 = 10,400 random sets


def build(raw: list[tuple[str, str, int, str]]) -> list[Backup]:
    out: dict[str, Backup] = {}
    for label, what, secs, state in raw:
        b = backup(START + timedelta(seconds=secs), label, what, state)
        out.setdefault(b.name, b)
    return list(out.values())


def oracle(group: list[Backup], r: Retention) -> set[str]:
    """restic's policy written another way: the newest of each of the first N periods."""
    keep = {b.name for b in group[: r.last]}
    for rule, period, _show in PERIODS:
        n = getattr(r, rule)
        periods = [list(g) for _, g in itertools.groupby(group, key=lambda b: period(b.created))]
        keep |= {p[0].name for p in periods[:n]}
        if 0 < len(periods) < n:
            keep.add(group[-1].name)
    return keep | {group[0].name}


def check(raw: list[tuple[str, str, int, str]], r: Retention, later: int) -> None:
    backups = build(raw)
    now = START + timedelta(seconds=SPAN + later)
    first = plan(backups, r, now)
    assert [d.name for d in first] == [
        b.name for b in sorted(backups, key=lambda b: (b.created, b.name), reverse=True)
    ]
    by_name = {d.name: d for d in first}
    groups: dict[tuple[str, str], list[Backup]] = {}
    for d in first:
        if d.backup.complete:
            groups.setdefault((d.backup.label, d.backup.what), []).append(d.backup)
    for group in groups.values():
        assert by_name[group[0].name].keep, "the newest complete backup of a group is deleted"
        assert {b.name for b in group if by_name[b.name].keep} == oracle(group, r)
    for d in first:
        if d.keep:
            assert d.reasons and all(RULE.match(x) for x in d.reasons), d.reasons
        if not d.backup.complete and d.backup.state != DAMAGED:
            young = now - d.backup.created < timedelta(hours=24)
            assert d.keep == young
    survivors = [d.backup for d in first if d.keep]
    second = plan(survivors, r, now)
    assert all(d.keep for d in second), "pruning twice deletes more than pruning once"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(scenario, min_size=SETS_PER_EXAMPLE, max_size=SETS_PER_EXAMPLE))
def test_policy_properties_over_many_random_sets(sets):
    for raw, r, later in sets:
        check(raw, r, later)


# ---------------------------------------------------------------- drill records


def test_stray_drill_records_are_those_whose_backup_is_gone():
    from tiffin.catalog.retention import stray_records
    from tiffin.targets.base import Entry

    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    old, young = [(now - timedelta(hours=h)).timestamp() for h in (25, 1)]
    kept = "a_2026-12-01_00:00:00_UTC.sql.gz"
    bare = "a_2026-12-02_00:00:00_UTC.sql.gz"  # its manifest only: left for you, record too
    gone = "a_2026-12-03_00:00:00_UTC.sql.gz"
    other = "b_2026-12-03_00:00:00_UTC.sqlite"
    entries = [
        Entry(kept, 10),
        Entry(kept + ".manifest.json", 1),
        Entry(kept + ".drill.json", 1),
        Entry(kept + ".drill.json", 0, old, partial=True),  # a stale temp of a record
        Entry(bare + ".manifest.json", 1),
        Entry(bare + ".drill.json", 1),
        Entry(gone + ".drill.json", 1),
        Entry(gone + ".drill.json", 0, young, partial=True),  # may still be written
        Entry(other + ".drill.json", 1),
        Entry("notes.drill.json", 1),  # not a backup's record: not ours
    ]
    stray = stray_records(entries, now, None, None)
    assert [(e.name, e.partial) for e in stray] == [
        (kept + ".drill.json", True),
        (gone + ".drill.json", False),
        (other + ".drill.json", False),
    ]
    assert [e.name for e in stray_records(entries, now, "b", None)] == [other + ".drill.json"]
    assert [e.name for e in stray_records(entries, now, None, "mysql")] == [
        kept + ".drill.json",
        gone + ".drill.json",
    ]

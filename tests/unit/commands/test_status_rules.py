"""status's pure parts: the verdict rule, --max-age's durations, how spans read, and the
archive window's place (tests/unit/commands/test_status_page_strings.py: hostile strings)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tiffin.catalog.backup import Backup
from tiffin.catalog.drillrecord import Drilled
from tiffin.catalog.watch import FAILED, OK, STALE, JobStatus, Window, archive_window, judge, span
from tiffin.commands.status import as_json, table
from tiffin.commands.statuspage import page
from tiffin.errors import UsageError
from tiffin.job import TargetOptions, TargetURL
from tiffin.numbers import parse_duration
from tiffin.options import BY_DEST, coerce

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
B = Backup("h_2026-12-07_03:00:00_UTC.sql.gz", "h", "pgsql", NOW - timedelta(hours=3), size=5)
PASSED = Drilled(B.name, NOW, True)
BROKEN = Drilled(B.name, NOW, False, "rows differ")


@pytest.mark.parametrize(
    ("newest", "age", "attempt", "drill", "verdict"),
    [
        (B, 3600.0, "", None, OK),
        (B, 3600.0, "", PASSED, OK),
        (B, 30 * 3600.0, "", PASSED, STALE),
        (None, None, "", None, FAILED),
        (B, 3600.0, "its newest backup X is incomplete: it has no manifest", None, FAILED),
        (B, 3600.0, "", BROKEN, FAILED),
        (B, 30 * 3600.0, "", BROKEN, FAILED),  # FAILED wins over STALE, both reasons kept
    ],
)
def test_the_verdict_rule(
    newest: Backup | None, age: float | None, attempt: str, drill: Drilled | None, verdict: str
) -> None:
    got, reasons = judge(newest, age, attempt, drill, 26 * 3600.0)
    assert got == verdict
    assert bool(reasons) == (verdict != OK)
    if drill is BROKEN:
        assert any("rows differ" in r for r in reasons)
    if age and age > 26 * 3600:
        assert any("over 1d 2h" in r for r in reasons)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("26h", 93600), ("90m", 5400), ("45s", 45), ("1.5d", 129600), (" 8d ", 691200)],
)
def test_durations_are_a_number_with_a_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert coerce(BY_DEST["max_age"], text) == seconds


@pytest.mark.parametrize("text", ["26", "", "h", "-1h", "1w", "1e3s", "nan", "inf h", "٣h", "0s"])
def test_other_durations_are_refused_in_one_sentence(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--max-age "):
        coerce(BY_DEST["max_age"], text)


def test_spans_read_as_a_person_writes_them() -> None:
    assert [span(s) for s in (5, 125, 3 * 3600 + 720, 2 * 86400 + 4 * 3600)] == [
        "5s",
        "2m",
        "3h 12m",
        "2d 4h",
    ]


def test_the_archive_window_is_a_dash_until_archives_land_and_then_is_shown(
    tmp_path: Path,
) -> None:
    """The place point-in-time archives plug into: archive_window() says None today (shown
    as "—" and null); a window it returns is already rendered in the table, JSON and page."""
    from tiffin.targets.local import LocalTarget

    target = LocalTarget(TargetURL("local", path=str(tmp_path)), TargetOptions())
    assert archive_window(target, target.list(), "h") is None
    base = JobStatus("j", "file:///b", "h", "pgsql", OK, (), B, NOW, 60.0)
    assert json.loads(as_json([base]))[0]["archive"] is None
    assert table([base])[1].rstrip().endswith("—")
    window = Window(NOW - timedelta(days=2), NOW - timedelta(minutes=1))
    shown = replace(base, archive=window)
    assert json.loads(as_json([shown]))[0]["archive"] == {
        "first": "2026-12-05T06:00:00Z",
        "last": "2026-12-07T05:59:00Z",
    }
    assert table([shown])[1].endswith("2026-12-05 06:00 to 2026-12-07 05:59")
    assert b"2026-12-05 06:00 to 2026-12-07 05:59" in page([shown], NOW)

"""A name, label, LSN or GTID read by a pattern ends where the text ends: `$` would also
match before a final newline, and let "web1\n" through as a label or a WAL name."""

from __future__ import annotations

import pytest

from tiffin.catalog import binlogs, walnames
from tiffin.catalog.naming import check_label, parse_name
from tiffin.errors import UsageError


@pytest.mark.parametrize("end", ["\n", "\r\n", "\u2028", "\x00"])
def test_no_name_is_taken_with_a_line_end_after_it(end: str) -> None:
    for good in (
        "000000010000000000000001",
        "00000002.history",
        "000000010000000000000001.partial",
    ):
        assert walnames.parse(good) is not None
        assert walnames.parse(good + end) is None
    assert binlogs._LOG.match("mysql-bin.000001")
    assert not binlogs._LOG.match("mysql-bin.000001" + end)
    assert parse_name("a_2026-01-01_00:00:00_UTC.sql.gz" + end) is None
    with pytest.raises(UsageError):
        check_label("web1" + end)

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tiffin.catalog.naming import check_label, check_name, make_name, parse_name
from tiffin.errors import UsageError


def test_name_is_the_seeds_form_in_utc():
    when = datetime(2011, 2, 10, 15, 17, 42, tzinfo=timezone(timedelta(hours=1)))
    assert make_name("ramen-default-sql-0", "mysql", when, "gzip", False) == (
        "ramen-default-sql-0_2011-02-10_14:17:42_UTC.sql.gz"
    )


@pytest.mark.parametrize(
    ("what", "codec", "enc", "ext"),
    [
        ("pgsql", "zstd", False, ".sql.zst"),
        ("data", "gzip", False, ".data.tar.gz"),
        ("sqlite", "none", False, ".sqlite"),
        ("mysql", "gzip", True, ".sql.gz.age"),
    ],
)
def test_extensions(what, codec, enc, ext):
    name = make_name("h", what, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), codec, enc)
    assert name == "h_2026-01-02_03:04:05_UTC" + ext
    parsed = parse_name(name)
    assert parsed is not None
    assert parsed.label == "h" and parsed.compression == codec and parsed.encrypted == enc
    assert parsed.created == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_labels_with_underscores_parse():
    p = parse_name("my_host_1_2026-01-02_03:04:05_UTC.data.tar.gz")
    assert p is not None and p.label == "my_host_1" and p.kind == "data"


@pytest.mark.parametrize(
    "name",
    ["x.sql.gz", "h_2026-01-02_03:04:05_UTC.sql.gz.manifest.json", "h_2026-01-02_03:04:05.sql.gz"],
)
def test_other_files_are_not_backups(name):
    assert parse_name(name) is None


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".."])
def test_names_cannot_climb(bad):
    with pytest.raises(UsageError):
        check_name(bad)


@pytest.mark.parametrize("bad", ["", "-x", "a b", "a/b", "x" * 101])
def test_bad_labels(bad):
    with pytest.raises(UsageError):
        check_label(bad)

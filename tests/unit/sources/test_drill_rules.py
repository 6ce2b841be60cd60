"""The drill's pure parts: how a dump is split for psql, and the checks a drill applies."""

from __future__ import annotations

import io

import pytest

from tiffin.commands.drill import check_files, check_sqlite, check_tables
from tiffin.commands.drillsql import dump_major
from tiffin.sources.psqlfeed import LONG, connect_target, pieces


def split(text: bytes, follow: bool = True, block: int = 7) -> list[bytes | str]:
    """Run TEXT through pieces() read BLOCK bytes at a time, joining adjacent bytes."""

    class Slow(io.RawIOBase):  # returns BLOCK-sized reads at most, to cut lines anywhere
        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b):
            chunk = self.data.read(min(len(b), block))
            b[: len(chunk)] = chunk
            return len(chunk)

    out: list[bytes | str] = []
    for p in pieces(io.BufferedReader(Slow(text), 16), follow):
        if isinstance(p, bytes) and out and isinstance(out[-1], bytes):
            out[-1] += p
        else:
            out.append(p)
    return out


def test_pg_dumpall_is_cut_at_each_connect_and_its_own_restrict_lines_left_out():
    dump = (
        b"\\restrict KEY1\n"
        b'CREATE ROLE "cook";\n'
        b"\\unrestrict KEY1\n"
        b"\\connect template1\n"
        b"\\restrict KEY2\n"
        b'CREATE DATABASE "ramen";\n'
        b"\\unrestrict KEY2\n"
        b'\\connect "ramen"\n'
        b'COPY "public"."menu" ("id", "d") FROM stdin;\n'
        b"\\restrict inside copy data: a carriage return then estrict\n"
        b"\\connect x\n"
        b"\\.\n"
        b"SELECT 1; \\! touch /tmp/x\n"
        b"\\connect dbname=x host=elsewhere\n"
        b"\\c -reuse-previous=on \"dbname='it\\'s'\"\n"
        b"\\! touch /tmp/y"
    )
    assert split(dump) == [
        b'CREATE ROLE "cook";\n',
        "template1",
        b'CREATE DATABASE "ramen";\n',
        "ramen",
        b'COPY "public"."menu" ("id", "d") FROM stdin;\n'
        b"\\restrict inside copy data: a carriage return then estrict\n"
        b"\\connect x\n\\.\nSELECT 1; \\! touch /tmp/x\n"
        b"\\connect dbname=x host=elsewhere\n",  # not pg_dump's: left to psql, who refuses it
        "it's",
        b"\\! touch /tmp/y",
    ]


def test_without_follow_connect_every_connect_is_left_to_psql():
    assert split(b"\\restrict K\n\\connect other\nSELECT 1;\n", follow=False) == [
        b"\\connect other\nSELECT 1;\n"
    ]


def test_long_lines_pass_through_unread_in_bounded_memory():
    row = b"(1,'" + b"x" * (LONG * 3) + b"'),\n"
    long_meta = b"\\connect " + b"a" * (LONG * 2) + b"\n"
    out = split(b"\\connect a\n" + row + long_meta + b"\\connect b\n", block=1 << 16)
    assert out == ["a", row + long_meta, "b"]


@pytest.mark.parametrize(
    ("arg", "db"),
    [
        (b"template1", "template1"),
        (b'"ramen"', "ramen"),
        (b'"we""ird"', 'we"ird'),
        (b"-reuse-previous=on \"dbname='ramen'\"", "ramen"),
        (b"-reuse-previous=on \"dbname='it\\'s'\"", "it's"),
        (b"dbname=x host=y", None),
        (b"-X", None),
    ],
)
def test_connect_targets(arg, db):
    assert connect_target(arg) == db


def test_the_scratch_postgresql_major_is_the_dump_tool_s():
    assert dump_major({"dump_tool": "pg_dumpall 15", "server_version": "13.2"}) == 15
    assert dump_major({"dump_tool": "pg_dump (on PATH)", "server_version": "16.1 (Debian)"}) == 16
    assert dump_major({"dump_tool": ["odd"]}) == 0


# ---------------------------------------------------------------- the checks

DETAILS = {
    "server": "mysql",
    "databases": ["shop", "mysql"],
    "tables": {"shop": ["items", "orders", "logs", "huge"]},
    "rows": {"shop": {"items": 1000, "orders": 500, "logs": 0}},
    "rows_estimated": {"shop": {"huge": 10**9}},
}


def test_a_faithful_copy_passes_with_small_differences_as_warnings():
    restored = {
        "shop": {"items": 998, "orders": 500, "logs": 0, "huge": 12, "extra": 3},
        "mysql": {"user": 1},
    }
    problems, warnings, summary = check_tables(DETAILS, restored)
    assert problems == []
    assert warnings == ["table shop.items has 998 rows, 1,000 when the backup began"]
    assert summary == "2 databases, 4 tables, 1,510 rows"


def test_missing_or_emptied_tables_and_lost_rows_fail():
    problems, _, _ = check_tables(DETAILS, {"shop": {"items": 1000, "logs": 0, "huge": 0}})
    assert problems == ["table shop.orders is missing"]
    problems, warnings, _ = check_tables(
        DETAILS, {"shop": {"items": 800, "orders": 0, "logs": 0, "huge": 0}}
    )
    assert problems == [
        "table shop.orders is empty; it held 500 rows at backup time",
        "only 800 of the 1,500 rows counted at backup time came back (under 90%)",
    ]
    assert "table shop.huge is empty; the server estimated it had rows" in warnings
    problems, _, _ = check_tables(DETAILS, {"shop": None, "mysql": {}})
    assert problems == ["database shop is missing"]


def test_files_and_sqlite_rules():
    details = {"files": 100, "bytes": 10_000}
    assert check_files(details, 100, 10_000) == ([], [])
    assert check_files(details, 95, 9_500)[0] == []
    assert check_files(details, 89, 10_000)[0] == ["only 89 of the 100 files came back"]
    assert check_files(details, 100, 10)[0] == ["only 10 of the 10,000 bytes of files came back"]
    assert check_sqlite({"tables": {"t": 5}}, {"t": 5}) == ([], "1 table, 5 rows")
    assert check_sqlite({"tables": {"t": 5, "u": 1}}, {"t": 4})[0] == [
        "table t has 4 rows; the backup held 5",
        "table u is missing",
    ]


def test_temporary_tables_of_other_sessions_are_not_expected_back():
    details = {"server": "pgsql", "databases": ["d"], "tables": {"d": ["public.t", "pg_temp_3.x"]}}
    assert check_tables(details, {"d": {"public.t": 1}})[0] == []


def test_the_scratch_postgresql_is_the_dump_s_major_or_the_oldest_newer():
    from tiffin.engine.scratch.postgres import pick_server
    from tiffin.errors import BackupFailed

    have = {13: "/13/bin", 15: "/15/bin", 17: "/17/bin"}
    assert pick_server(15, have) == "/15/bin"
    assert pick_server(14, have) == "/15/bin"
    with pytest.raises(BackupFailed, match=r"install postgresql-18$"):
        pick_server(18, have)

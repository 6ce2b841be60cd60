"""The drill's pure parts: redirecting a dump to scratch databases, and the checks it applies."""

from __future__ import annotations

import io

import pytest

from tiffin.drill import check_files, check_sqlite, check_tables
from tiffin.drillsql import LONG, MySQLRenamer, PostgresRenamer, connect_target, rewritten
from tiffin.errors import BackupFailed


def scratch_map() -> tuple[dict[str, str], set[str]]:
    return {}, set()


def run_through(rw, text: bytes, block: int = 7) -> bytes:
    class Slow(io.RawIOBase):  # returns BLOCK-sized reads at most, to cut lines anywhere
        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b):
            chunk = self.data.read(min(len(b), block))
            b[: len(chunk)] = chunk
            return len(chunk)

    return rewritten(io.BufferedReader(Slow(text), 16), rw).read()


def my_renamer():
    names: dict[str, str] = {}
    return MySQLRenamer(lambda db: names.setdefault(db, f"s_{len(names) + 1}"), set()), names


def test_mysql_dump_lines_go_to_scratch_databases_and_events_are_disabled():
    rw, names = my_renamer()
    dump = (
        b"/*!40101 SET NAMES utf8mb4 */;\n"
        b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET x */;\n"
        b"USE `shop`;\n"
        b"INSERT INTO `items` VALUES\n"
        b"(2,'USE `x`;'),\n"
        b"(3,'CREATE DATABASE `y`');\n"
        b"ALTER DATABASE `shop` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;\n"
        b"/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `tidy` ON "
        b"SCHEDULE EVERY 1 HOUR STARTS '2026-11-28 05:48:38' ON COMPLETION NOT PRESERVE ENABLE "
        b"DO DELETE FROM t \n"
        b"USE `mysql`;\n"
        b"USE `we``ird`;\n"
    )
    got = run_through(rw, dump).split(b"\n")
    assert got[1] == (
        b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `s_1` /*!40100 DEFAULT CHARACTER SET x */;"
    )
    assert got[2] == b"USE `s_1`;"
    assert got[4:6] == [b"(2,'USE `x`;'),", b"(3,'CREATE DATABASE `y`');"]
    assert got[6] == b"ALTER DATABASE `s_1` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;"
    assert b"NOT PRESERVE DISABLE DO DELETE FROM t" in got[7]
    assert got[8:10] == [b"CREATE DATABASE IF NOT EXISTS `s_2`;", b"USE `s_2`;"]
    assert got[11] == b"USE `s_3`;"
    assert names == {"shop": "s_1", "mysql": "s_2", "we`ird": "s_3"}


def test_a_database_line_that_cannot_be_redirected_stops_the_drill():
    rw, _ = my_renamer()
    with pytest.raises(BackupFailed, match="cannot redirect"):
        run_through(rw, b"DROP DATABASE IF EXISTS shop;\n")


def test_long_lines_pass_through_unread_in_bounded_memory():
    rw, _ = my_renamer()
    row = b"(1,'" + b"x" * (LONG * 3) + b"'),\n"
    dump = b"USE `a`;\n" + row + b"USE `b`;\n"
    out = run_through(rw, dump, block=1 << 16)
    assert out == b"CREATE DATABASE IF NOT EXISTS `s_1`;\nUSE `s_1`;\n" + row + (
        b"CREATE DATABASE IF NOT EXISTS `s_2`;\nUSE `s_2`;\n"
    )
    with pytest.raises(BackupFailed):
        run_through(my_renamer()[0], b"USE `" + b"a" * (LONG * 2) + b"`;\n", block=1 << 16)


def pg_renamer(cluster: bool):
    names: dict[str, str] = {}
    rw = PostgresRenamer(lambda db: names.setdefault(db, f"s_{len(names) + 1}"), set(), cluster)
    return rw, names


def test_pg_dumpall_global_part_is_left_out_and_every_connect_is_redirected():
    rw, names = pg_renamer(cluster=True)
    dump = (
        b"\\restrict KEY1\n"
        b"SET default_transaction_read_only = off;\n"
        b'CREATE ROLE "cook";\n'
        b"ALTER ROLE \"cook\" WITH NOSUPERUSER PASSWORD 'SCRAM-SHA-256$4096:x';\n"
        b'GRANT "cook" TO "chef" GRANTED BY "postgres";\n'
        b"\\unrestrict KEY1\n"
        b"\\connect template1\n"
        b"\\restrict KEY2\n"
        b"CREATE DATABASE \"ramen\" WITH TEMPLATE = template0 ENCODING = 'UTF8';\n"
        b'ALTER DATABASE "ramen" OWNER TO "postgres";\n'
        b"\\unrestrict KEY2\n"
        b'\\connect "ramen"\n'
        b'COPY "public"."menu" ("id", "d") FROM stdin;\n'
        b"1\t\\\\connect postgres\n"
        b'CREATE ROLE "inside copy data"\n'
        b"\\.\n"
        b'GRANT SELECT ON TABLE "public"."menu" TO "cook";\n'
    )
    out = run_through(rw, dump).decode()
    assert "ROLE" not in out.split("\\connect s_1")[0]
    assert "SET default_transaction_read_only = off;" in out
    assert "\\restrict KEY1\n" in out and "\\unrestrict KEY1\n" in out
    assert 'CREATE DATABASE "s_1";\n\\connect s_1\n' in out
    assert 'CREATE DATABASE "s_2" WITH TEMPLATE = template0' in out
    assert 'ALTER DATABASE "s_2" OWNER TO "postgres";' in out
    assert '\\connect s_2\nCOPY "public"."menu"' in out
    assert '1\t\\\\connect postgres\nCREATE ROLE "inside copy data"\n\\.\n' in out
    assert 'GRANT SELECT ON TABLE "public"."menu" TO "cook";' in out
    assert names == {"template1": "s_1", "ramen": "s_2"}


def test_pg_dump_create_lines_are_redirected_too():
    rw, _ = pg_renamer(cluster=False)
    out = run_through(
        rw,
        b'DROP DATABASE IF EXISTS "ramen";\n'
        b'CREATE DATABASE "ramen" WITH TEMPLATE = template0;\n'
        b"COMMENT ON DATABASE \"ramen\" IS 'x';\n"
        b'REVOKE CONNECT,TEMPORARY ON DATABASE "ramen" FROM PUBLIC;\n'
        b'\\connect "ramen"\n'
        b'CREATE TABLE "public"."database" (id int);\n',
    ).decode()
    assert out == (
        'DROP DATABASE IF EXISTS "s_1";\n'
        'CREATE DATABASE "s_1" WITH TEMPLATE = template0;\n'
        "COMMENT ON DATABASE \"s_1\" IS 'x';\n"
        'REVOKE CONNECT,TEMPORARY ON DATABASE "s_1" FROM PUBLIC;\n'
        "\\connect s_1\n"
        'CREATE TABLE "public"."database" (id int);\n'
    )
    with pytest.raises(BackupFailed, match="cannot redirect"):
        run_through(pg_renamer(False)[0], b"\\connect dbname=x host=elsewhere\n")


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

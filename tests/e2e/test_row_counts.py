"""The row counts a backup records for drill, read from real servers: exact for the smallest
tables within the budget (COUNT_TABLE_BYTES each, COUNT_BYTES in all), the server's estimate
for the rest. The budget is shrunk so that small tables cross it."""

from __future__ import annotations

import pytest

from tiffin.job import DBConn, SourceSpec
from tiffin.sources import mysql as mysql_source
from tiffin.sources import pginventory
from tiffin.sources import postgresql as pg_source

KiB = 1 << 10


def conn(server) -> DBConn:
    return DBConn(host=server.host, port=server.port, user=server.user, password=server.password)


def drained(source) -> dict:
    """Read SOURCE's dump to the end; return what finish() adds."""
    with source.open() as dump:
        while dump.read(1 << 20):
            pass
    return source.finish()


def backed_up(source) -> dict:
    """Run SOURCE as a backup does (prepare, dump to the end, finish); return its details."""
    details = source.prepare()
    details.update(drained(source))
    assert source.warnings() == []
    return details


# Names that str.splitlines() would cut: the clients' output is split at "\n" only.
ODD = "odd name\u2028\x0c"
ITS = "it's\x85"


@pytest.fixture(scope="module")
def pg_counts(postgres):
    postgres.sql('DROP DATABASE IF EXISTS "counts"')
    postgres.sql('CREATE DATABASE "counts"')
    postgres.sql(
        "CREATE TABLE tiny AS SELECT generate_series(1, 10) AS i;"
        f'CREATE SCHEMA "{ODD}";'
        f'CREATE TABLE "{ODD}"."{ITS}" AS SELECT generate_series(1, 7) AS i;'
        "CREATE TABLE mid AS SELECT generate_series(1, 3000) AS i;"
        "CREATE TABLE big AS SELECT generate_series(1, 60000) AS i;"
        "CREATE EXTENSION pg_trgm; ANALYZE;",
        "counts",
    )
    return postgres


@pytest.mark.parametrize(
    ("budget", "exact", "estimated"),
    [
        (1 << 30, {"public.tiny": 10, f"{ODD}.{ITS}": 7, "public.mid": 3000}, {"public.big"}),
        # tiny and it's fit (8 KiB each), mid (112 KiB) no longer does, nor anything after it.
        (20 * KiB, {"public.tiny": 10, f"{ODD}.{ITS}": 7}, {"public.mid", "public.big"}),
    ],
)
def test_pgsql_counts_the_smallest_tables_within_the_budget(
    pg_counts, monkeypatch, budget, exact, estimated
):
    monkeypatch.setattr(pginventory, "COUNT_TABLE_BYTES", 1 << 20)
    monkeypatch.setattr(pginventory, "COUNT_BYTES", budget)
    details = backed_up(
        pg_source.PostgresSource(SourceSpec("pgsql", conn(pg_counts), databases=("counts",)))
    )
    assert details["rows"] == {"counts": exact}
    assert set(details["rows_estimated"]["counts"]) == estimated
    assert details["rows_estimated"]["counts"]["public.big"] == 60000  # reltuples after ANALYZE
    assert sorted(details["tables"]["counts"]) == sorted([*exact, *estimated])
    assert set(details["extensions"]["counts"]) == {"pg_trgm"}


def test_mysql_counts_the_smallest_tables_within_the_budget(mariadb, monkeypatch):
    mariadb.sql("DROP DATABASE IF EXISTS counts; CREATE DATABASE counts;")
    mariadb.sql(
        "CREATE TABLE counts.tiny (i INT PRIMARY KEY) ENGINE=InnoDB;"
        "INSERT INTO counts.tiny SELECT seq FROM seq_1_to_10;"
        f"CREATE TABLE counts.`{ITS}` (i INT PRIMARY KEY) ENGINE=InnoDB;"
        f"INSERT INTO counts.`{ITS}` SELECT seq FROM seq_1_to_7;"
        "CREATE TABLE counts.big (i INT PRIMARY KEY, pad CHAR(100)) ENGINE=InnoDB;"
        "INSERT INTO counts.big SELECT seq, 'x' FROM seq_1_to_60000;"
        f"ANALYZE TABLE counts.tiny, counts.`{ITS}`, counts.big;",
        "counts",
    )
    monkeypatch.setattr(mysql_source, "COUNT_TABLE_BYTES", 1 << 20)
    details = backed_up(
        mysql_source.MySQLSource(SourceSpec("mysql", conn(mariadb), databases=("counts",)))
    )
    assert details["rows"] == {"counts": {"tiny": 10, ITS: 7}}
    assert set(details["rows_estimated"]["counts"]) == {"big"}
    assert details["rows_estimated"]["counts"]["big"] > 30000  # InnoDB's estimate


def test_pgsql_counts_that_fail_leave_a_warning_not_a_failed_backup(postgres):
    postgres.sql('DROP DATABASE IF EXISTS "gone"')
    postgres.sql('CREATE DATABASE "gone"')
    postgres.sql("CREATE TABLE kept AS SELECT 1 AS i; CREATE TABLE doomed AS SELECT 1 AS i", "gone")
    source = pg_source.PostgresSource(SourceSpec("pgsql", conn(postgres), databases=("gone",)))
    source.prepare()  # reads the tables of the one database it dumps, and starts the dump
    for child in source._children:  # which locks them to its end: let it end (a tiny dump
        child.proc.wait()  # fits the pipe) before the table goes, or the drop fails it
    postgres.sql("DROP TABLE doomed", "gone")  # dropped between the plan and the count
    details = drained(source)
    assert "rows" not in details
    assert details["tables"] == {"gone": ["public.doomed", "public.kept"]}
    (warning,) = source.warnings()
    assert warning.startswith("the row counts drill checks against could not be taken")
    assert "doomed" in warning


def test_mysql_counts_that_fail_leave_a_warning_not_a_failed_backup(mariadb):
    mariadb.sql("DROP DATABASE IF EXISTS gone; CREATE DATABASE gone;")
    mariadb.sql("CREATE TABLE kept (i INT); CREATE TABLE doomed (i INT);", "gone")
    source = mysql_source.MySQLSource(SourceSpec("mysql", conn(mariadb), databases=("gone",)))
    assert source.prepare()["rows"] == {}
    mariadb.sql("DROP TABLE doomed", "gone")
    assert drained(source) == {}
    (warning,) = source.warnings()
    assert warning.startswith("the row counts drill checks against could not be taken")
    assert "doomed" in warning

"""Sources of many tables (6,000 of 200-character names in SQLite, the case that first broke;
20,000 in PostgreSQL): their manifests are large, and every backup that reported
success lists as complete, verifies, restores and prunes (a 1 MiB read limit once broke all
of these for a few thousand tables of long names)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import backups, tiffin
from tests.faults.tried import tried
from tests.servers.env import tiffin_env

TABLES = 20_000
# SQLite makes each new table in time that grows with the tables before it (20,000 took
# 140 s here): 6,000 names of 200 characters already give a 1.3 MB manifest.
SQLITE_TABLES = 6_000


def lifecycle(target: Path, backup: list[str], env: dict[str, str]) -> str:
    """Back up twice, then list, verify, prune to one; return the backup kept, which is
    checked to be complete."""
    tiffin(backup, env)
    time.sleep(1.1)  # a second backup, under a new name
    tiffin(backup, env)
    names = backups(target)
    assert len(names) == 2
    assert max(len((target / (n + ".manifest.json")).read_bytes()) for n in names) > 1 << 20
    listed = json.loads(tiffin(["list", "local", str(target), "--json"], env).stdout)
    assert [i["status"] for i in listed] == ["complete", "complete"], listed
    r = tiffin(["verify", "local", str(target), "--all"], env)
    assert "Verified 2 backups: 2 OK, 0 FAILED, 0 incomplete." in r.stdout, r.stdout
    tiffin(["prune", "local", str(target), "--keep-last", "1"], env)
    assert backups(target) == [names[-1]]
    return names[-1]


@tried(
    "hostile",
    "A source of thousands of tables (a manifest over 1 MiB)",
    "a SQLite file of 6,000 tables with 200-character names (a manifest of about 1.3 MB), "
    "and a PostgreSQL database of 20,000 tables created in one session; backed up twice to a "
    "folder, then `list`, `verify --all`, `prune --keep-last 1`, `restore` and `drill`",
    "both backups list as complete and verify OK; prune keeps the newest; the restored copy "
    "holds every table; drill passes (sqlite). Tables: 6,000 (SQLite), 20,000 (PostgreSQL); "
    "backups reported damaged or unrestorable: 0",
)
@pytest.mark.parametrize("source", ["sqlite", "pgsql"])
def test_a_source_of_thousands_of_tables_backs_up_lists_verifies_restores_and_prunes(
    source: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    target = tmp_path / "b"
    if source == "sqlite":
        env = tiffin_env(tmp_path / "home")
        db = tmp_path / "wide.db"
        conn = sqlite3.connect(db)
        conn.executescript(
            "BEGIN;"
            + "".join(f'CREATE TABLE "t{i:05d}{"x" * 194}" (v);' for i in range(SQLITE_TABLES))
            + "COMMIT;"
        )
        conn.close()
        name = lifecycle(target, ["backup", "sqlite", "local", str(target), "--file", str(db)], env)
        out = tmp_path / "copy.db"
        tiffin(["restore", "local", str(target), name, "--into", "sqlite", "--file", str(out)], env)
        conn = sqlite3.connect(out)
        (count,) = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()
        conn.close()
        assert count == SQLITE_TABLES
        r = tiffin(["drill", "local", str(target), name, "--into", "sqlite"], env)
        assert f"{SQLITE_TABLES:,} tables" in r.stdout, r.stdout
        return
    pg = request.getfixturevalue("postgres")
    env = tiffin_env(tmp_path / "home", **pg.client_env())
    pg.sql('DROP DATABASE IF EXISTS "wide"; DROP DATABASE IF EXISTS "wide_copy"')
    pg.sql('CREATE DATABASE "wide"')
    try:
        # One session; a DO block per 2,000 tables keeps each transaction's locks few.
        pg.sql(
            "".join(
                f"DO $$ BEGIN FOR i IN {lo}..{lo + 1999} LOOP EXECUTE format("
                "'CREATE TABLE %I (v int)', 't' || lpad(i::text, 5, '0') || repeat('x', 57));"
                " END LOOP; END $$;\n"
                for lo in range(0, TABLES, 2000)
            ),
            "wide",
        )
        conn = [*pg.conn_args(), "--database", "wide"]
        name = lifecycle(target, ["backup", "pgsql", "local", str(target), *conn], env)
        restore = ["restore", "local", str(target), name, "--into", "pgsql", *pg.conn_args()]
        tiffin([*restore, "--database", "wide_copy"], env)
        count = pg.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", "wide_copy")
        assert int(count) == TABLES
    finally:
        pg.sql('DROP DATABASE IF EXISTS "wide" WITH (FORCE)')
        pg.sql('DROP DATABASE IF EXISTS "wide_copy" WITH (FORCE)')

"""--counts exact|estimate|off: what a database backup records for drill (row counts taken
exactly, the server's estimates, or none), and drill checking what was recorded."""

from __future__ import annotations

import json

import pytest

from tests.e2e.helpers import backups, tiffin
from tests.e2e.test_drill import kitchen, pg_backup, pg_env, pg_scratch, summary

assert pg_env  # the fixture, shared with the drill tests


def manifest(out, name: str) -> dict:
    return json.loads((out / (name + ".manifest.json")).read_text())["source"]


@pytest.fixture
def kitchens(postgres):
    kitchen(postgres, "kitchen_counts")
    yield postgres
    postgres.sql('DROP DATABASE IF EXISTS "kitchen_counts" WITH (FORCE)')


def test_all_databases_backup_records_every_database_s_tables_and_exact_rows(
    kitchens, pg_env, tmp_path
):
    name = pg_backup(kitchens, pg_env, tmp_path / "b")
    details = manifest(tmp_path / "b", name)
    assert details["tables"]["kitchen_counts"] == ["kitchen.orders", "public.menu"]
    assert details["rows"]["kitchen_counts"] == {"kitchen.orders": 500, "public.menu": 1000}
    assert set(details["extensions"]["kitchen_counts"]) == {"pg_trgm"}
    assert "counts" not in details


@pytest.mark.parametrize("mode", ["estimate", "off"])
def test_counts_estimate_or_off_records_no_exact_rows_and_drill_checks_the_tables(
    kitchens, pg_env, tmp_path, mode
):
    kitchens.sql("ANALYZE", "kitchen_counts")
    out = tmp_path / "b"
    name = pg_backup(kitchens, pg_env, out, "--database", "kitchen_counts", "--counts", mode)
    details = manifest(out, name)
    assert details["counts"] == mode
    assert "rows" not in details
    assert sorted(details["tables"]["kitchen_counts"]) == ["kitchen.orders", "public.menu"]
    if mode == "estimate":
        assert details["rows_estimated"]["kitchen_counts"] == {
            "kitchen.orders": 500,
            "public.menu": 1000,
        }
    else:
        assert "rows_estimated" not in details
    r = tiffin(["drill", "local", str(out), name, "--into", "pgsql", *kitchens.conn_args()], pg_env)
    assert summary(r, name) == "1 database, 2 tables, 1,500 rows"
    assert "no row counts" in r.stdout + r.stderr
    assert pg_scratch(kitchens) == []


def test_counts_takes_only_exact_estimate_or_off(pg_env, tmp_path):
    r = tiffin(["backup", "pgsql", "local", str(tmp_path), "--counts", "some"], pg_env, expect=2)
    assert "--counts" in r.stderr
    assert backups(tmp_path) == []

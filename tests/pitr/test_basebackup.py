"""`backup pgsql --physical`: a base backup streamed from pg_basebackup, its manifest, and
its failures (the server stopped mid-backup, the target's disk full) leaving nothing."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import backups, leftovers, manifest, tiffin
from tests.faults.midstream import LABEL, assert_failed, running
from tests.faults.places import Place, tmpfs
from tests.servers.env import tiffin_env
from tests.servers.postgres import Postgres


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    server = Postgres().start()
    try:
        server.sql("CREATE DATABASE shop;\n")
        server.sql(
            "CREATE TABLE orders (id int PRIMARY KEY, note text);"
            "INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 50000) g;",
            "shop",
        )
        yield server
    finally:
        server.close()


def lsn(text: str) -> int:
    high, low = text.split("/")
    return int(high, 16) << 32 | int(low, 16)


def env_of(pg: Postgres, tmp_path: Path) -> dict[str, str]:
    return tiffin_env(tmp_path / "home", **pg.client_env())


def test_base_backup_is_one_tar_with_the_facts_of_the_cluster(pg: Postgres, tmp_path: Path) -> None:
    out = tmp_path / "b"
    args = ["backup", "pgsql", "local", str(out), *pg.conn_args(), "--physical"]
    r = tiffin([*args, "--compress", "zstd", "--label", "ramen"], env_of(pg, tmp_path))
    [name] = backups(out)
    assert name.startswith("ramen_") and name.endswith("_UTC.pgbase.tar.zst")
    assert f"Backup {name} completed." in r.stdout
    m = manifest(out, name)
    src = m["source"]
    assert m["what"] == "pgbase" and src["server"] == "pgbase"
    system = pg.sql("SELECT system_identifier FROM pg_control_system()")
    assert src["system_identifier"] == system
    assert src["timeline"] == 1 and src["stop_timeline"] == 1
    assert lsn(src["start_lsn"]) < lsn(src["stop_lsn"])
    assert src["start_time"] <= src["stop_time"]
    assert "shop" in src["databases"] and src["tables"]["shop"] == ["public.orders"]
    plain = subprocess.run(["zstd", "-dc", str(out / name)], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(plain.stdout)) as tar:
        names = tar.getnames()
        label = tar.extractfile("backup_label").read().decode()  # type: ignore[union-attr]
    assert {"backup_label", "backup_manifest", "global/pg_control", "PG_VERSION"} <= set(names)
    assert any(n.startswith("pg_wal/0000000100000000") for n in names)
    assert f"START WAL LOCATION: {src['start_lsn']}" in label
    assert "archive_mode is off" in r.stdout  # this server keeps no archive: it says so


def test_physical_takes_the_whole_server(pg: Postgres, tmp_path: Path) -> None:
    args = ["backup", "pgsql", "local", str(tmp_path / "b"), "--physical", "--database", "shop"]
    r = tiffin(args, env_of(pg, tmp_path), expect=2)
    assert "--physical backs up the whole server: drop --database" in r.stderr
    r = tiffin(["backup", "data", "local", str(tmp_path / "b"), "--physical"], expect=2)
    assert "--physical" in r.stderr and "not data" in r.stderr
    assert leftovers(tmp_path / "b") == []


def test_target_disk_full_publishes_nothing(pg: Postgres, tmp_path: Path) -> None:
    with tmpfs("2m") as root:
        folder = root / "b"
        args = ["backup", "pgsql", "local", str(folder), *pg.conn_args(), "--physical"]
        r = tiffin([*args, "--compress", "none", "--label", LABEL], env_of(pg, tmp_path), expect=1)
        [report] = [ln for ln in r.stderr.splitlines() if ln.startswith(f"Backup {LABEL}_")]
        assert " FAILED: " in report and "full" in report, report
        assert leftovers(folder) == []
    # The server lives on and a later backup works.
    assert pg.sql("SELECT count(*) FROM orders", "shop") == "50000"


def test_server_stopped_mid_backup_publishes_nothing(pg: Postgres, tmp_path: Path) -> None:
    folder = tmp_path / "b"
    place = Place("local", ["local", str(folder)], f"file://{folder}", env_of(pg, tmp_path))
    place.folder = folder
    args = ["backup", "pgsql", *place.args, *pg.conn_args(), "--physical", "--label", LABEL]
    try:
        with running([*args, "--compress", "none", "--timeout", "20"], place.env) as run:
            run.freeze_midstream(place, 4 << 20)
            pg.stop()
            run.finish()
    finally:
        pg.start()
    report = assert_failed(run, "pg_basebackup")
    # The server ends the backup's session ("terminating connection") or just goes away.
    assert "pg_basebackup: error:" in report, report
    assert leftovers(folder) == []


def test_latest_of_a_dump_passes_over_base_backups(pg: Postgres, tmp_path: Path) -> None:
    out, env = tmp_path / "b", env_of(pg, tmp_path)
    tiffin(["backup", "pgsql", "local", str(out), *pg.conn_args(), "--database", "shop"], env)
    tiffin(["backup", "pgsql", "local", str(out), *pg.conn_args(), "--physical"], env)
    args = ["restore", "local", str(out), "latest", "--into", "pgsql", *pg.conn_args()]
    r = tiffin([*args, "--database", "shop_copy"], env)
    assert ".sql.gz completed: loaded into database shop_copy" in r.stdout
    assert pg.sql("SELECT count(*) FROM orders", "shop_copy") == "50000"
    [dump] = [n for n in backups(out) if n.endswith(".sql.gz")]
    r = tiffin(
        ["restore", "local", str(out), dump, "--into", "pgdata", "--dir", "x"], env, expect=1
    )
    assert f"there is no base backup named {dump} here" in r.stderr


def test_keep_last_prunes_base_backups_after_a_backup(pg: Postgres, tmp_path: Path) -> None:
    out, env = tmp_path / "b", env_of(pg, tmp_path)
    args = ["backup", "pgsql", "local", str(out), *pg.conn_args(), "--physical", "--keep-last"]
    tiffin([*args, "1"], env)
    r = tiffin([*args, "1"], env)
    [kept] = backups(out)
    assert f"Backup {kept} completed." in r.stdout and "Pruned: " in r.stdout
    assert "pruning old WAL failed" not in r.stdout

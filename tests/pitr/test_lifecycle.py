"""The lifecycle knows base backups and their WAL: list and status show the recoverable
window, verify re-reads the WAL a base backup needs, drill --physical recovers it in a
throwaway server, prune removes the WAL no kept base backup needs and no other."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.helpers import backups, tiffin
from tests.pitr import cluster
from tests.pitr.cluster import LABEL, mark, markers, switch_and_wait
from tests.servers.env import tiffin_env
from tests.servers.postgres import Postgres
from tests.servers.proc import SHARED_TMP


@dataclass
class Two:
    """An archiving server with two base backups, a marker committed after each."""

    pg: Postgres
    folder: Path
    env: dict[str, str]
    first_segment_after: str  # the first segment archived after the second base backup

    @property
    def wal(self) -> Path:
        return self.folder / f"{LABEL}.wal"

    def archived(self) -> list[str]:
        return sorted(p.name.removesuffix(".zst") for p in self.wal.iterdir())


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Two]:
    top = Path(tempfile.mkdtemp(prefix="tiffin-pitr-", dir=SHARED_TMP))
    top.chmod(0o755)
    folder = top / "backups"
    cluster.give_to_postgres(folder)
    pg = Postgres(settings=cluster.archiving(folder)).start()
    try:
        env = tiffin_env(Path(tmp_path_factory.mktemp("home")), **pg.client_env())
        pg.sql("CREATE DATABASE shop")
        pg.sql("CREATE TABLE markers (n int PRIMARY KEY, at timestamptz)")
        pg.sql("CREATE TABLE orders AS SELECT g AS id FROM generate_series(1, 1000) g", "shop")
        args = ["backup", "pgsql", "local", str(folder), *pg.conn_args(), "--physical"]
        tiffin([*args, "--label", LABEL], env)
        mark(pg, 1)
        switch_and_wait(pg)
        cluster.next_second()
        tiffin([*args, "--label", LABEL], env)
        after = switch_and_wait(pg)
        mark(pg, 2)
        switch_and_wait(pg)
        yield Two(pg, folder, env, after)
    finally:
        pg.close()
        shutil.rmtree(top, ignore_errors=True)


def test_list_and_status_show_base_backups_and_the_window(two: Two) -> None:
    out = tiffin(["list", "local", str(two.folder)], two.env).stdout
    names = backups(two.folder)
    assert len(names) == 2 and all(n.endswith(".pgbase.tar.gz") for n in names)
    for name in names:
        assert name in out and "pgbase" in out
    [window] = [ln for ln in out.splitlines() if ln.startswith(f"{LABEL}: recoverable from ")]
    first_stop = json.loads((two.folder / f"{names[0]}.manifest.json").read_text())["source"]
    assert f"from {first_stop['stop_time'].replace('T', ' ').replace('Z', ' UTC')} to " in window
    r = tiffin(["status", "local", str(two.folder), "--json"], two.env, expect=None)
    [job] = [j for j in json.loads(r.stdout) if j["what"] == "pgbase"]
    assert job["archive"]["first"] == first_stop["stop_time"]
    assert job["archive"]["last"] >= job["archive"]["first"]


def test_verify_rereads_the_wal_a_base_backup_needs(two: Two, tmp_path: Path) -> None:
    r = tiffin(["verify", "local", str(two.folder), "latest"], two.env)
    assert r.stdout.startswith("OK ") and "archived WAL files re-read, unbroken to" in r.stdout
    victim = two.wal / f"{two.first_segment_after}.zst"
    kept = tmp_path / victim.name
    shutil.copy2(victim, kept)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    try:
        r = tiffin(["verify", "local", str(two.folder), "latest"], two.env, expect=1)
        assert (
            f"FAILED {backups(two.folder)[1]}: the archived {two.first_segment_after}" in r.stdout
        )
    finally:
        shutil.copy2(kept, victim)


def test_drill_physical_recovers_in_a_throwaway_server(two: Two) -> None:
    # Its scratch folder goes in a TMPDIR of the test's own (one `nobody` can enter).
    scratch = Path(tempfile.mkdtemp(prefix="tiffin-drill-", dir=SHARED_TMP))
    scratch.chmod(0o755)
    env = {**two.env, "TMPDIR": str(scratch)}
    r = tiffin(["drill", "local", str(two.folder), "latest", "--physical"], env)
    assert "passed: 2 databases, 2 tables" in r.stdout, r.stdout
    assert "recovered to " in r.stdout
    assert list(scratch.iterdir()) == []
    scratch.rmdir()
    name = backups(two.folder)[1]
    record = json.loads((two.folder / f"{name}.drill.json").read_text())
    assert record["passed"] is True


def test_prune_removes_only_the_wal_no_kept_base_backup_needs(two: Two) -> None:
    first, second = backups(two.folder)
    start = json.loads((two.folder / f"{second}.manifest.json").read_text())["source"]
    keep_from = cluster.segment_of(start["timeline"], start["start_lsn"])
    before = two.archived()
    r = tiffin(["prune", "local", str(two.folder), "--keep-last", "1"], two.env)
    assert f"deleted {first}" in r.stdout and "WAL files of ramen" in r.stdout
    after = two.archived()
    assert backups(two.folder) == [second]
    gone = sorted(set(before) - set(after))
    assert gone and all(g[:24] < keep_from for g in gone), (gone, keep_from)
    assert all(a[:24] >= keep_from or a.endswith(".history") for a in after)
    copy = cluster.recovered()
    try:
        args = ["restore", "local", str(two.folder), "latest", "--into", "pgdata"]
        tiffin([*args, "--dir", str(copy.datadir)], two.env)
        copy.start()
        cluster.wait_promoted(copy)
        assert markers(copy) == [1, 2]
    finally:
        copy.close()

"""restore --into mysqldata --to-time T: the newest physical backup before T written as a data
directory, then the archived binary logs replayed into it up to T: every marker committed at
or before T, none after; a time outside the window or a gap refused before DATADIR exists."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.e2e.binlogs import binlog_server, marked_history
from tests.e2e.helpers import backups, manifest, tiffin
from tests.e2e.test_binlog_pitr import shown
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB
from tests.servers.proc import SHARED_TMP


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A server with a physical backup and markers at T1 < T2 < T3 (T2 around a log
    rotation, with an account made), all archived."""
    source = binlog_server()
    tmp = tmp_path_factory.mktemp("physical-pitr")
    out = tmp / "b"
    env = tiffin_env(tmp / "home", **source.client_env())
    conn = [*source.conn_args(), "--label", "shop"]
    try:
        t1, t2, t3 = marked_history(
            source,
            lambda: tiffin(["backup", "mysql", "local", str(out), "--physical", *conn], env),
            lambda: tiffin(["binlog", "local", str(out), *conn], env),
            at_t2="CREATE USER 'cook'@'%' IDENTIFIED BY 'noodles';",
        )
        yield {"out": out, "env": env, "t1": t1, "t2": t2, "t3": t3, "conn": conn}
    finally:
        source.close()


def restore(history: dict, out: Path | None = None, *extra: str, expect: int = 0):
    copy = MariaDB()
    args = ["restore", "local", str(out or history["out"]), "latest", "--into", "mysqldata",
            "--dir", str(copy.datadir), *extra]  # fmt: skip
    return copy, tiffin(args, history["env"], expect=expect)


def markers(server: MariaDB) -> list[int]:
    return [int(x) for x in server.sql("SELECT id FROM shop.markers ORDER BY id").split()]


def test_physical_restore_to_t2_has_markers_up_to_t2_and_none_after(history: dict) -> None:
    copy, done = restore(history, None, "--to-time", shown(history["t2"]))
    try:
        assert f"the last transaction applied committed at {shown(history['t2'])}" in done.stdout
        assert [p.name for p in copy.workdir.iterdir() if p.name.startswith(".")] == []
        copy.start()
        assert markers(copy) == [0, 1, 21, 22, 23]
        assert copy.sql("SELECT COUNT(*) FROM mysql.global_priv WHERE User='cook'") == "1"
        assert (
            copy.sql("SELECT COUNT(*) FROM mysql.global_priv WHERE User LIKE 'tiffin_replay%'")
            == "0"
        )
    finally:
        copy.close()


def test_physical_restore_to_t1(history: dict) -> None:
    copy, _ = restore(history, None, "--to-time", shown(history["t1"]))
    try:
        copy.start()
        assert markers(copy) == [0, 1]
    finally:
        copy.close()


def test_a_time_outside_the_window_or_a_gap_is_refused_before_datadir_is_written(
    history: dict, tmp_path: Path
) -> None:
    late = history["t3"] + timedelta(hours=1)
    copy, failed = restore(history, None, "--to-time", shown(late), expect=1)
    try:
        assert "outside the archive's window: recoverable from" in failed.stderr
        assert not copy.datadir.exists()
    finally:
        copy.close()
    gapped = tmp_path / "copy"
    shutil.copytree(history["out"], gapped)
    records = sorted((gapped / "shop.binlog").glob("*.json"))
    victim = records[len(records) // 2]
    victim.unlink()
    copy, failed = restore(history, gapped, "--to-time", shown(history["t3"]), expect=1)
    try:
        assert victim.name[: -len(".json")] in failed.stderr
        assert not copy.datadir.exists()
    finally:
        copy.close()


def test_drill_of_a_physical_backup_to_t2_replays_in_scratch(history: dict) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tiffin-drill-tmp-", dir=SHARED_TMP))  # `nobody` enters it
    tmp.chmod(0o755)
    try:
        env = {**history["env"], "TMPDIR": str(tmp)}
        args = ["drill", "local", str(history["out"]), "latest", "--into", "mysqldata"]
        done = tiffin([*args, "--to-time", shown(history["t2"])], env)
        assert "passed: 2 databases, 1 table, 5 rows" in done.stdout, done.stdout
        assert f"the last transaction applied committed at {shown(history['t2'])}" in done.stdout
        done = tiffin([*args, "--to-time", shown(history["t1"])], env)
        assert "1 table, 2 rows" in done.stdout, done.stdout
        assert os.listdir(tmp) == []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_list_and_verify_count_a_physical_backup_in_the_archives_window(history: dict) -> None:
    out, env = history["out"], history["env"]
    listing = tiffin(["list", "local", str(out)], env).stdout
    [name] = backups(out)
    finished = manifest(out, name)["finished"].replace("T", " ").rstrip("Z")
    assert f"shop (binary logs): recoverable from {finished} UTC to " in listing
    verified = tiffin(["verify", "local", str(out), name], env).stdout
    assert f"OK {name}" in verified and "binary logs" in verified and "checked" in verified


def test_prune_keeps_the_logs_a_kept_physical_backup_needs(history: dict, tmp_path: Path) -> None:
    out, env = tmp_path / "copy", history["env"]
    shutil.copytree(history["out"], out)
    tiffin(["backup", "mysql", "local", str(out), "--physical", *history["conn"]], env)
    tiffin(["binlog", "local", str(out), *history["conn"]], env)
    _first, newest = sorted(backups(out))
    start = manifest(out, newest)["source"]["binlog"]["file"]
    before = sorted(p.name[:-5] for p in (out / "shop.binlog").glob("*.json"))
    done = tiffin(["prune", "local", str(out), "--keep-last", "1"], env).stdout
    after = sorted(p.name[:-5] for p in (out / "shop.binlog").glob("*.json"))
    assert backups(out) == [newest] and after == [n for n in before if n >= start]
    assert after != before and "binary logs no kept backup needs" in done

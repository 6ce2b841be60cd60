"""restore --into mysqldata --to-time T: the newest physical backup before T written as a data
directory, then the archived binary logs replayed into it up to T: every marker committed at
or before T, none after; a time outside the window or a gap refused before DATADIR exists."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.e2e.binlogs import binlog_server, marked_history
from tests.e2e.helpers import tiffin
from tests.e2e.test_binlog_pitr import shown
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB


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
        yield {"out": out, "env": env, "t1": t1, "t2": t2, "t3": t3}
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

"""restore --into mysql --to-time T: the newest dump before T, then its binary logs replayed
up to T: every marker committed at or before T, none after; refusals before any load."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from tests.e2e.binlogs import binlog_server, marked_history
from tests.e2e.helpers import tiffin
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB


def shown(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Iterator[dict]:
    """A server with a dump and markers at T1 < T2 < T3 (T2 around a log rotation),
    archived; and a fresh server to restore into."""
    source = binlog_server()
    fresh = MariaDB(server_args=("--skip-log-bin",)).start()
    tmp = tmp_path_factory.mktemp("pitr")
    out = tmp / "b"
    env = tiffin_env(tmp / "home", **source.client_env())
    conn = source.conn_args()
    try:
        t1, t2, t3 = marked_history(
            source,
            lambda: tiffin(["backup", "mysql", "local", str(out), *conn, "--label", "shop"], env),
            lambda: tiffin(["binlog", "local", str(out), *conn, "--label", "shop"], env),
        )
        yield {"out": out, "fresh": fresh, "t1": t1, "t2": t2, "t3": t3, "tmp": tmp}
    finally:
        fresh.close()
        source.close()


def restore(history: dict, *extra: str, expect: int = 0):
    fresh: MariaDB = history["fresh"]
    fresh.sql("DROP DATABASE IF EXISTS shop")
    env = tiffin_env(history["tmp"] / "home", **fresh.client_env())
    args = ["restore", "local", str(history["out"]), "latest", "--into", "mysql"]
    return tiffin([*args, *fresh.conn_args(), *extra], env, expect=expect)


def markers(server: MariaDB) -> list[int]:
    return [int(x) for x in server.sql("SELECT id FROM shop.markers ORDER BY id").split()]


def test_restore_between_t2_and_t3_has_markers_up_to_t2_and_none_after(history):
    done = restore(history, "--to-time", shown(history["t2"]))
    assert markers(history["fresh"]) == [0, 1, 21, 22, 23]
    assert f"the last transaction applied committed at {shown(history['t2'])}" in done.stdout


def test_restore_to_t1(history):
    restore(history, "--to-time", shown(history["t1"]))
    assert markers(history["fresh"]) == [0, 1]


def test_restore_to_the_end_reaches_the_last_commit(history):
    done = restore(history)
    assert markers(history["fresh"]) == [0, 1, 3, 21, 22, 23]
    assert shown(history["t3"]) in done.stdout


def test_time_past_the_archive_is_refused_before_anything_is_loaded(history):
    late = history["t3"] + timedelta(hours=1)
    failed = restore(history, "--to-time", shown(late), expect=1)
    assert "outside the archive's window: recoverable from" in failed.stderr
    assert history["fresh"].sql("SHOW DATABASES LIKE 'shop'") == ""


def test_time_before_the_first_dump_is_refused_naming_the_window(history):
    early = history["t1"] - timedelta(days=1)
    failed = restore(history, "--to-time", shown(early), expect=1)
    assert "outside the archive's window: recoverable from" in failed.stderr
    assert history["fresh"].sql("SHOW DATABASES LIKE 'shop'") == ""


def test_a_gap_is_refused_naming_the_missing_log(history, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(history["out"], copy)
    records = sorted((copy / "shop.binlog").glob("*.json"))
    victim = records[len(records) // 2]
    victim.unlink()
    failed = restore({**history, "out": copy}, "--to-time", shown(history["t3"]), expect=1)
    assert victim.name[: -len(".json")] in failed.stderr
    assert history["fresh"].sql("SHOW DATABASES LIKE 'shop'") == ""


def test_drill_to_a_time_replays_in_a_scratch_server(history):
    env = tiffin_env(history["tmp"] / "home")
    args = ["drill", "local", str(history["out"]), "latest", "--into", "mysql"]
    done = tiffin([*args, "--to-time", shown(history["t2"])], env)
    assert "passed" in done.stdout and "binary logs replayed" in done.stdout
    assert f"last transaction applied at {shown(history['t2'])}" in done.stdout
    late = shown(history["t3"] + timedelta(hours=1))
    failed = tiffin([*args, "--to-time", late], env, expect=1)
    assert "outside the archive's window" in failed.stderr

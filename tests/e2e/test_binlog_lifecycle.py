"""list shows the binary log window, verify re-reads the logs a dump needs, prune removes
only the logs no kept dump needs (and a restore to the end still works after it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.binlogs import binlog_server
from tests.e2e.helpers import backups, manifest, tiffin
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB


@pytest.fixture
def two_dumps(tmp_path) -> Iterator[dict]:
    source = binlog_server()
    try:
        out = tmp_path / "b"
        env = tiffin_env(tmp_path / "home", **source.client_env())
        conn = [*source.conn_args(), "--label", "shop"]
        source.sql(
            "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY) ENGINE=InnoDB;"
            "INSERT INTO shop.t VALUES (1);"
        )
        tiffin(["backup", "mysql", "local", str(out), *conn], env)
        tiffin(["binlog", "local", str(out), *conn], env)
        source.sql("INSERT INTO shop.t VALUES (2)")
        tiffin(["binlog", "local", str(out), *conn], env)
        tiffin(["backup", "mysql", "local", str(out), *conn], env)
        source.sql("INSERT INTO shop.t VALUES (3)")
        tiffin(["binlog", "local", str(out), *conn], env)
        yield {"out": out, "env": env, "source": source}
    finally:
        source.close()


def logs(out) -> list[str]:
    return sorted(p.name[: -len(".json")] for p in (out / "shop.binlog").glob("*.json"))


def test_list_shows_the_window(two_dumps):
    listing = tiffin(["list", "local", str(two_dumps["out"])], two_dumps["env"]).stdout
    first = sorted(backups(two_dumps["out"]))[0]
    finished = manifest(two_dumps["out"], first)["finished"].replace("T", " ").rstrip("Z")
    assert f"shop (binary logs): recoverable from {finished} UTC to " in listing


def test_verify_rereads_the_logs_a_dump_needs_and_fails_on_a_damaged_one(two_dumps):
    out, env = two_dumps["out"], two_dumps["env"]
    first = sorted(backups(out))[0]
    ok = tiffin(["verify", "local", str(out), first], env).stdout
    assert "binary logs" in ok and "checked" in ok
    victim = out / "shop.binlog" / f"{logs(out)[-1]}.gz"
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0xFF
    victim.write_bytes(bytes(data))
    failed = tiffin(["verify", "local", str(out), first], env, expect=1)
    assert "FAILED" in failed.stdout and logs(out)[-1] in failed.stdout


def test_prune_removes_only_logs_no_kept_dump_needs(two_dumps, tmp_path):
    out, env = two_dumps["out"], two_dumps["env"]
    names = sorted(backups(out))
    newest_start = manifest(out, names[-1])["source"]["binlog"]["file"]
    before = logs(out)
    done = tiffin(["prune", "local", str(out), "--keep-last", "1"], env).stdout
    after = logs(out)
    assert after == [n for n in before if n >= newest_start]
    assert after != before and "binary logs no kept backup needs" in done
    fresh = MariaDB(server_args=("--skip-log-bin",)).start()
    try:
        restore_env = tiffin_env(tmp_path / "home2", **fresh.client_env())
        args = ["restore", "local", str(out), "latest", "--into", "mysql", *fresh.conn_args()]
        tiffin(args, restore_env)
        assert fresh.sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM shop.t") == "1,2,3"
    finally:
        fresh.close()


def test_status_shows_the_window(two_dumps):
    out, env = two_dumps["out"], two_dumps["env"]
    first = sorted(backups(out))[0]
    finished = manifest(out, first)["finished"].replace("T", " ")[:16]
    shown = tiffin(["status", "local", str(out)], env, expect=None).stdout
    row = next(line for line in shown.splitlines() if line.startswith("shop-mysql"))
    assert f"{finished} to " in row

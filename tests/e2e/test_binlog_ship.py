"""`tiffin binlog`: ship every closed binary log once, atomically, with its sha256; a purge of
logs not yet shipped is a gap (exit 1 naming it); --follow keeps up and stops cleanly."""

from __future__ import annotations

import gzip
import hashlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.binlogs import binlog_server, master_status, purge_to
from tests.e2e.helpers import tiffin, tiffin_exe
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB


@pytest.fixture
def server() -> Iterator[MariaDB]:
    s = binlog_server()
    try:
        s.sql(
            "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;"
        )
        yield s
    finally:
        s.close()


def ship(server: MariaDB, out: Path, env: dict[str, str], *extra: str, expect: int = 0):
    args = ["binlog", "local", str(out), *server.conn_args(), "--label", "shop", *extra]
    return tiffin(args, env, expect=expect)


def archived(out: Path) -> list[str]:
    return sorted(p.name[: -len(".json")] for p in (out / "shop.binlog").glob("*.json"))


def test_ship_stores_each_closed_log_once_with_its_sha256(server, tmp_path):
    env = tiffin_env(tmp_path / "home", **server.client_env())
    out = tmp_path / "b"
    server.sql("INSERT INTO shop.t VALUES (1, 1)")
    first = ship(server, out, env).stdout
    logs = archived(out)
    assert logs and "Binlog archive completed" in first
    current, _ = master_status(server)
    assert current not in logs  # the log being written is never stored
    for log in logs:
        record = json.loads((out / "shop.binlog" / f"{log}.json").read_text())
        stored = (out / "shop.binlog" / record["stored"]).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == record["sha256"]
        assert gzip.decompress(stored) == (server.datadir / log).read_bytes()
    again = ship(server, out, env).stdout
    new = archived(out)
    assert new[: len(logs)] == logs and len(new) == len(logs) + 1  # only the rotated one
    assert all(log not in again for log in logs)
    assert not list((out / "shop.binlog").glob("*.partial"))


def test_purge_of_shipped_logs_is_survived(server, tmp_path):
    env = tiffin_env(tmp_path / "home", **server.client_env())
    out = tmp_path / "b"
    ship(server, out, env)
    current, _ = master_status(server)
    purge_to(server, current)
    server.sql("INSERT INTO shop.t VALUES (2, 2)")
    ship(server, out, env)
    assert current in archived(out)


def test_purge_of_logs_not_shipped_is_a_gap(server, tmp_path):
    env = tiffin_env(tmp_path / "home", **server.client_env())
    out = tmp_path / "b"
    metrics = tmp_path / "tiffin.prom"
    ship(server, out, env)
    missing, _ = master_status(server)
    server.sql("INSERT INTO shop.t VALUES (3, 3); FLUSH BINARY LOGS; FLUSH BINARY LOGS;")
    current, _ = master_status(server)
    purge_to(server, current)
    failed = ship(server, out, env, "--metrics-file", str(metrics), expect=1)
    assert missing in failed.stderr and "gap" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert 'tiffin_archive_last_status{job="shop-binlog"' in metrics.read_text()
    assert any(
        line.startswith("tiffin_archive_last_status") and line.endswith(" 0.0")
        for line in metrics.read_text().splitlines()
    )
    assert missing not in archived(out)


def test_binlog_refuses_a_server_without_binary_logs(mariadb, tmp_path):
    env = tiffin_env(tmp_path / "home", **mariadb.client_env())
    args = ["binlog", "local", str(tmp_path / "b"), *mariadb.conn_args()]
    failed = tiffin(args, env, expect=1)
    assert "binary logging is off" in failed.stderr


def test_binlog_command_line_errors_exit_2(tmp_path):
    assert tiffin(["binlog"], expect=2).stderr
    failed = tiffin(["binlog", "local", str(tmp_path), "--max-lag", "5"], expect=2)
    assert "--max-lag is for --follow" in failed.stderr


def test_follow_keeps_up_and_stops_cleanly_on_sigterm(server, tmp_path):
    env = tiffin_env(tmp_path / "home", **server.client_env())
    out = tmp_path / "b"
    args = ["binlog", "local", str(out), *server.conn_args(), "--label", "shop"]
    proc = subprocess.Popen(
        [tiffin_exe(), *args, "--follow", "--max-lag", "4"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for i in range(10, 16):
            server.sql(f"INSERT INTO shop.t VALUES ({i}, {i})")
            time.sleep(0.5)
        written, _ = master_status(server)
        deadline = time.monotonic() + 8
        while written not in archived(out) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert written in archived(out), "the archive lagged more than --max-lag"
        server.sql("INSERT INTO shop.t VALUES (99, 99)")
        last, _ = master_status(server)
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert last in archived(out)  # what it held when told to stop is stored
    assert "Traceback" not in stderr and "stopped" in stdout


def test_the_password_may_come_from_an_env_file_as_a_scheduled_job_has_it(server, tmp_path):
    env = tiffin_env(tmp_path / "home")  # no password in the environment
    secrets = tmp_path / "job.env"
    secrets.write_text(f"TIFFIN_DB_PASSWORD={server.password}\n")
    secrets.chmod(0o600)
    ship(server, tmp_path / "b", env, "--env-file", str(secrets))
    assert archived(tmp_path / "b")


def test_the_password_is_on_no_command_line_while_shipping_and_replaying(server, tmp_path):
    from tests.e2e.test_secrets_all import Watch

    env = tiffin_env(tmp_path / "home", **server.client_env())
    out = tmp_path / "b"
    with Watch(server.password) as watch:
        tiffin(["backup", "mysql", "local", str(out), *server.conn_args(), "--label", "shop"], env)
        server.sql("INSERT INTO shop.t VALUES (7, 7)")
        ship(server, out, env)
        server.sql("DROP DATABASE shop")
        args = ["restore", "local", str(out), "latest", "--into", "mysql", *server.conn_args()]
        tiffin(args, env)
    assert server.sql("SELECT v FROM shop.t") == "7"
    assert watch.scans > 10 and watch.seen == []


def test_run_takes_binlog_jobs_from_the_config(server, tmp_path):
    env = tiffin_env(tmp_path / "home", **server.client_env())
    out = tmp_path / "b"
    conf = tmp_path / "tiffin.toml"
    conf.write_text(
        "[defaults]\n"
        f'host = "127.0.0.1"\nport = {server.port}\nuser = "tiffin"\nlabel = "shop"\n'
        f'[jobs.nightly]\nwhat = "mysql"\nto = "file://{out}"\n'
        f'[jobs.logs]\nwhat = "binlog"\nto = "file://{out}"\n'
    )
    done = tiffin(["run", "--config", str(conf)], env).stdout
    assert "Backup shop_" in done and "Binlog archive completed" in done
    assert archived(out)
    only = tiffin(["run", "logs", "--config", str(conf)], env).stdout
    assert "Backup shop_" not in only and "Binlog archive completed" in only
    conf.write_text(conf.read_text() + "follow = true\n")
    refused = tiffin(["run", "--config", str(conf)], env, expect=2)  # it would never end
    assert "service" in refused.stderr and "Backup shop_" not in refused.stdout

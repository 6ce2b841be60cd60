"""--replica: dump from a real replica and record the source's coordinates."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.e2e.helpers import backups, manifest, tiffin
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB


@pytest.fixture(scope="module")
def replication() -> Iterator[tuple[MariaDB, MariaDB]]:
    source = MariaDB(server_args=("--log-bin=mysql-bin", "--server-id=1")).start()
    replica = MariaDB(server_args=("--skip-log-bin", "--server-id=2")).start()
    try:
        source.sql(
            "CREATE USER 'repl'@'%' IDENTIFIED BY 'Repl-pw-1';"
            "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';"
        )
        log_file, log_pos = source.sql("SHOW MASTER STATUS").split("\t")[:2]
        replica.sql(
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={source.port}, "
            f"MASTER_USER='repl', MASTER_PASSWORD='Repl-pw-1', MASTER_LOG_FILE='{log_file}', "
            f"MASTER_LOG_POS={log_pos}; START SLAVE;"
        )
        yield source, replica
    finally:
        replica.close()
        source.close()


def wait_replicated(replica: MariaDB, query: str, expected: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if replica.sql(query) == expected:
                return
        except Exception:  # the table may not exist yet on the replica
            pass
        time.sleep(0.1)
    raise AssertionError(f"replica never showed {expected!r} for {query}")


def test_replica_dump_records_the_sources_coordinates(replication, tmp_path):
    source, replica = replication
    source.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.t (i INT PRIMARY KEY) ENGINE=InnoDB;"
        "INSERT INTO shop.t VALUES (1),(2),(3);"
    )
    wait_replicated(replica, "SELECT COUNT(*) FROM shop.t", "3")
    env = tiffin_env(tmp_path / "home", **replica.client_env())
    out = tmp_path / "b"
    tiffin(
        [
            "backup",
            "mysql",
            "local",
            str(out),
            *replica.conn_args(),
            "--database",
            "shop",
            "--replica",
        ],
        env,
    )
    [name] = backups(out)
    rep = manifest(out, name)["source"]["replica"]
    assert rep["source"] == f"127.0.0.1:{source.port}"
    dump = tiffin(["restore", "local", str(out), name, "--output", "-"], env).stdout
    assert re.search(
        r"CHANGE MASTER (''\s)?TO MASTER_LOG_FILE='mysql-bin\.\d+', MASTER_LOG_POS=\d+", dump
    ), [ln for ln in dump.splitlines() if "MASTER" in ln]
    # the replica keeps replicating after the dump
    source.sql("INSERT INTO shop.t VALUES (4)")
    wait_replicated(replica, "SELECT COUNT(*) FROM shop.t", "4")


def test_replica_option_on_a_server_that_is_no_replica_fails(replication, tmp_path):
    source, _ = replication
    env = tiffin_env(tmp_path / "home", **source.client_env())
    r = tiffin(
        ["backup", "mysql", "local", str(tmp_path / "b"), *source.conn_args(), "--replica"],
        env,
        expect=1,
    )
    assert "not a replica" in r.stderr

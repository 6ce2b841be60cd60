"""Every mysql dump taken while binary logging is on records the binlog file, position and
GTID of its snapshot, in the dump and in the manifest, under every consistency mode."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e.binlogs import binlog_server, master_status
from tests.e2e.helpers import backups, manifest, tiffin
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB


@pytest.fixture(scope="module")
def logging_server() -> Iterator[MariaDB]:
    server = binlog_server()
    try:
        server.sql(
            "CREATE DATABASE shop;"
            "CREATE TABLE shop.orders (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;"
            "CREATE TABLE shop.legacy (id INT PRIMARY KEY) ENGINE=MyISAM;"
            "INSERT INTO shop.orders VALUES (1, 1), (2, 2); INSERT INTO shop.legacy VALUES (1);"
        )
        yield server
    finally:
        server.close()


@pytest.mark.parametrize(
    ("consistency", "used"),
    [("auto", "lock"), ("lock", "lock"), ("single-transaction", "single-transaction")],
)
def test_dump_records_its_binlog_coordinates(logging_server, tmp_path, consistency, used):
    server = logging_server
    server.sql("INSERT INTO shop.orders (id, v) SELECT MAX(id) + 1, 0 FROM shop.orders")
    file, pos = master_status(server)
    env = tiffin_env(tmp_path / "home", **server.client_env())
    out = tmp_path / "b"
    args = ["backup", "mysql", "local", str(out), *server.conn_args()]
    report = tiffin([*args, "--consistency", consistency], env).stdout
    assert used in report
    [name] = backups(out)
    source = manifest(out, name)["source"]
    assert source["consistency"] == used  # the mode stays exactly as chosen
    coords = source["binlog"]
    assert (coords["file"], coords["position"]) == (file, pos)
    assert coords["gtid"] == server.sql(f"SELECT BINLOG_GTID_POS('{file}', {pos})")
    assert coords["server_id"] == 1 and coords["basename"] == "bin"
    dump = tiffin(["restore", "local", str(out), name, "--output", "-"], env).stdout
    head = re.search(
        r"^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);", dump, re.M
    )
    assert head and (head[1], int(head[2])) == (file, pos)
    assert f"-- SET GLOBAL gtid_slave_pos='{coords['gtid']}';" in dump


def test_single_database_dump_records_coordinates_too(logging_server, tmp_path):
    server = logging_server
    env = tiffin_env(tmp_path / "home", **server.client_env())
    out = tmp_path / "b"
    tiffin(["backup", "mysql", "local", str(out), *server.conn_args(), "--database", "shop"], env)
    [name] = backups(out)
    assert manifest(out, name)["source"]["binlog"]["file"] == master_status(server)[0]


def test_dump_without_binary_logging_records_none(mariadb, tmp_path):
    env = tiffin_env(tmp_path / "home", **mariadb.client_env())
    out = tmp_path / "b"
    tiffin(["backup", "mysql", "local", str(out), *mariadb.conn_args()], env)
    [name] = backups(out)
    assert "binlog" not in manifest(out, name)["source"]

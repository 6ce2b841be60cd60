"""drill through the installed command: into tiffin's own throwaway MariaDB and PostgreSQL
servers (given the live servers' connection options, which it must leave alone), and into
scratch folders; a dump cut short (with its manifest rewritten to match, so that verify sees
nothing wrong) must fail the drill."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import sqlite3
import tarfile
import time

import pytest

from tests.e2e.dumps import pg_dump, plant
from tests.e2e.helpers import backups, tiffin
from tests.servers.env import tiffin_env

PASSED = r"Drill of {} passed: (.+) checked in [\d.]+ s\."


def cut_dump(out, name: str, marker: bytes | int) -> None:
    """Cut NAME's plain dump right before MARKER (or at that offset), store it gzipped again,
    and rewrite the manifest's size and sha256 to match: the bytes are sound, the dump not."""
    plain = gzip.decompress((out / name).read_bytes())
    at = marker if isinstance(marker, int) else plain.index(marker)
    stored = gzip.compress(plain[:at])
    (out / name).write_bytes(stored)
    path = out / (name + ".manifest.json")
    m = json.loads(path.read_text())
    m["size"], m["sha256"] = len(stored), hashlib.sha256(stored).hexdigest()
    path.write_text(json.dumps(m))


def summary(result, name: str) -> str:
    m = re.search(PASSED.format(re.escape(name)), result.stdout)
    assert m, result.stdout + result.stderr
    return m[1]


# ---------------------------------------------------------------- MySQL / MariaDB


@pytest.fixture
def my_env(mariadb, tmp_path):
    yield tiffin_env(tmp_path / "home", **mariadb.client_env(), HOSTNAME="drill-my")
    # The server is shared: leave no database behind for other tests' all-databases dumps.
    for db in ("shop_one", "shop_a", "shop_b", "shop_cut", "shop_kind"):
        mariadb.sql(f"DROP DATABASE IF EXISTS {db}")


def my_scratch(mariadb) -> list[str]:
    return mariadb.sql(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'tiffin_drill%'"
    ).split()


def shop(mariadb, db: str, engine: str = "InnoDB") -> None:
    items = ",".join(f"({i}, 'item {i}')" for i in range(1000))
    orders = ",".join(f"({i}, {i % 1000})" for i in range(500))
    mariadb.sql(f"DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}")
    mariadb.sql(
        f"CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE={engine};"
        f"INSERT INTO items VALUES {items};"
        f"CREATE TABLE orders (id INT PRIMARY KEY, item INT) ENGINE={engine};"
        f"INSERT INTO orders VALUES {orders};"
        "CREATE TABLE empty_one (id INT) ENGINE=InnoDB;"
        "CREATE VIEW big_orders AS SELECT * FROM orders WHERE item > 100;"
        "CREATE TRIGGER orders_ins BEFORE INSERT ON orders FOR EACH ROW SET NEW.item = NEW.item;"
        "CREATE PROCEDURE count_items() SELECT COUNT(*) FROM items;"
        "CREATE EVENT tidy ON SCHEDULE EVERY 1 HOUR DO DELETE FROM empty_one;",
        db,
    )


def my_backup(mariadb, env, out, *extra: str) -> str:
    tiffin(["backup", "mysql", "local", str(out), *mariadb.conn_args(), *extra], env)
    return backups(out)[-1]


def test_drill_of_a_single_database_mysql_backup_passes_and_leaves_nothing(
    mariadb, my_env, tmp_path
):
    shop(mariadb, "shop_one")
    out = tmp_path / "b"
    name = my_backup(mariadb, my_env, out, "--database", "shop_one")
    m = json.loads((out / (name + ".manifest.json")).read_text())
    assert m["source"]["rows"] == {"shop_one": {"items": 1000, "orders": 500, "empty_one": 0}}
    r = tiffin(
        ["drill", "local", str(out), "latest", "--into", "mysql", *mariadb.conn_args()], my_env
    )
    assert summary(r, name) == "1 database, 3 tables, 1,500 rows"
    assert my_scratch(mariadb) == []
    assert mariadb.sql("SELECT COUNT(*) FROM items", "shop_one") == "1000"


def test_drill_of_an_all_databases_mysql_backup_never_touches_the_real_ones(
    mariadb, my_env, tmp_path
):
    shop(mariadb, "shop_a")
    shop(mariadb, "shop_b", engine="MyISAM")
    out = tmp_path / "b"
    name = my_backup(mariadb, my_env, out)
    mariadb.sql("INSERT INTO items VALUES (5000, 'after the backup')", "shop_a")
    mariadb.sql("DROP TABLE empty_one", "shop_b")
    r = tiffin(["drill", "local", str(out), name, "--into", "mysql", *mariadb.conn_args()], my_env)
    got = summary(r, name)
    assert re.match(r"\d+ databases, \d+ tables, [\d,]+ rows", got), got
    assert my_scratch(mariadb) == []
    assert mariadb.sql("SELECT COUNT(*) FROM items", "shop_a") == "1001"
    assert mariadb.sql("SHOW TABLES LIKE 'empty_one'", "shop_b") == ""


def test_drill_fails_on_a_mysql_dump_cut_short_that_verify_cannot_tell(mariadb, my_env, tmp_path):
    shop(mariadb, "shop_cut")
    out = tmp_path / "b"
    name = my_backup(mariadb, my_env, out, "--database", "shop_cut")
    cut_dump(out, name, b"-- Table structure for table `orders`")
    tiffin(["verify", "local", str(out), name], my_env)  # every byte is as the manifest says
    drill = ["drill", "local", str(out), name, "--into", "mysql", *mariadb.conn_args()]
    r = tiffin(drill, my_env, expect=1)
    assert f"Drill of {name} FAILED: table shop_cut.orders is missing" in r.stderr
    assert my_scratch(mariadb) == []

    stored = (out / name).read_bytes()[:-40]  # the compressed stream itself cut short
    (out / name).write_bytes(stored)
    path = out / (name + ".manifest.json")
    m = json.loads(path.read_text())
    m["size"], m["sha256"] = len(stored), hashlib.sha256(stored).hexdigest()
    path.write_text(json.dumps(m))
    r = tiffin(drill, my_env, expect=1)
    assert f"Drill of {name} FAILED:" in r.stderr and "truncated" in r.stderr
    assert my_scratch(mariadb) == []


def test_drill_refuses_a_backup_of_another_kind(mariadb, my_env, tmp_path):
    shop(mariadb, "shop_kind")
    out = tmp_path / "b"
    name = my_backup(mariadb, my_env, out, "--database", "shop_kind")
    r = tiffin(["drill", "local", str(out), name, "--into", "pgsql"], my_env, expect=1)
    assert "it is a mysql backup: drill it --into mysql" in r.stderr
    r = tiffin(["drill", "local", str(out), "latest", "--into", "pgsql"], my_env, expect=1)
    assert "no complete pgsql backup" in r.stderr
    tiffin(["drill", "local", str(out), name], my_env, expect=2)


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_env(postgres, tmp_path):
    yield tiffin_env(tmp_path / "home", **postgres.client_env(), HOSTNAME="drill-pg")
    for db in ("kitchen_one", "kitchen_all", "kitchen_cut"):
        postgres.sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    postgres.sql("DROP ROLE IF EXISTS drill_cook")


def pg_scratch(postgres) -> list[str]:
    return postgres.sql(
        "SELECT datname FROM pg_database WHERE datname LIKE 'tiffin_drill%'"
    ).split()


def kitchen(postgres, db: str) -> None:
    postgres.sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    postgres.sql(f'CREATE DATABASE "{db}"')
    postgres.sql(
        "CREATE EXTENSION IF NOT EXISTS pg_trgm;"
        "CREATE TABLE menu (id int PRIMARY KEY, dish text);"
        "INSERT INTO menu SELECT i, 'dish ' || i FROM generate_series(1, 1000) i;"
        "CREATE SCHEMA kitchen;"
        "CREATE TABLE kitchen.orders (id int PRIMARY KEY, dish int REFERENCES menu);"
        "INSERT INTO kitchen.orders SELECT i, i % 1000 + 1 FROM generate_series(1, 500) i;"
        "CREATE VIEW cheap AS SELECT * FROM menu WHERE id < 10;",
        db,
    )


def pg_backup(postgres, env, out, *extra: str) -> str:
    tiffin(["backup", "pgsql", "local", str(out), *postgres.conn_args(), *extra], env)
    return backups(out)[-1]


def test_drill_of_a_single_database_pgsql_backup_passes(postgres, pg_env, tmp_path):
    kitchen(postgres, "kitchen_one")
    out = tmp_path / "b"
    name = pg_backup(postgres, pg_env, out, "--database", "kitchen_one")
    r = tiffin(["drill", "local", str(out), name, "--into", "pgsql", *postgres.conn_args()], pg_env)
    assert summary(r, name) == "1 database, 2 tables, 1,500 rows"
    assert pg_scratch(postgres) == []


def test_drill_of_all_databases_pgsql_leaves_roles_and_originals_alone(postgres, pg_env, tmp_path):
    kitchen(postgres, "kitchen_all")
    postgres.sql(
        "DROP ROLE IF EXISTS drill_cook; CREATE ROLE drill_cook NOLOGIN;"
        "GRANT SELECT ON menu TO drill_cook;",
        "kitchen_all",
    )
    out = tmp_path / "b"
    name = pg_backup(postgres, pg_env, out)
    postgres.sql("ALTER ROLE drill_cook LOGIN")
    postgres.sql("INSERT INTO menu VALUES (5000, 'after the backup')", "kitchen_all")
    r = tiffin(["drill", "local", str(out), name, "--into", "pgsql", *postgres.conn_args()], pg_env)
    got = summary(r, name)
    assert re.match(r"\d+ databases, \d+ tables, [\d,]+ rows", got), got
    assert pg_scratch(postgres) == []
    assert postgres.sql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'drill_cook'") == "t"
    assert postgres.sql("SELECT count(*) FROM menu", "kitchen_all") == "1001"


def test_drill_fails_on_a_pgsql_dump_cut_before_a_table_s_rows(postgres, pg_env, tmp_path):
    kitchen(postgres, "kitchen_cut")
    out = tmp_path / "b"
    name = pg_backup(postgres, pg_env, out, "--database", "kitchen_cut")
    cut_dump(out, name, b'COPY "kitchen"."orders"')
    tiffin(["verify", "local", str(out), name], pg_env)
    r = tiffin(
        ["drill", "local", str(out), name, "--into", "pgsql", *postgres.conn_args()],
        pg_env,
        expect=1,
    )
    assert (
        f"Drill of {name} FAILED: table kitchen_cut.kitchen.orders is empty; "
        "it held 500 rows at backup time"
    ) in r.stderr
    assert pg_scratch(postgres) == []


# ---------------------------------------------------------------- data and sqlite


def test_drill_of_a_data_backup_passes_and_fails_when_files_are_cut_off(tmp_path):
    root = tmp_path / "src" / "data"
    (root / "sub").mkdir(parents=True)
    for i in range(20):
        (root / "sub" / f"f{i:02d}.txt").write_text(f"file {i}\n" * 100)
    env = tiffin_env(tmp_path / "home", HOSTNAME="drill-files")
    out = tmp_path / "b"
    tiffin(["backup", "data", "local", str(out), "--dir", str(root)], env)
    [name] = backups(out)
    work = tmp_path / "work"
    work.mkdir()
    drill = ["drill", "local", str(out), name, "--into", "dir", "--dir", str(work)]
    r = tiffin(drill, env)
    assert summary(r, name) == "20 files, 15,000 bytes"
    assert list(work.iterdir()) == []

    plain = gzip.decompress((out / name).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        eleventh = [m for m in tar.getmembers() if m.isfile()][10]
    cut_dump(out, name, eleventh.offset)
    r = tiffin(drill, env, expect=1)
    assert f"Drill of {name} FAILED: only 10 of the 20 files came back" in r.stderr
    assert list(work.iterdir()) == []


def test_drill_of_a_sqlite_backup_checks_every_table_s_rows(tmp_path):
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    con.executemany("INSERT INTO t (v) VALUES (?)", [(f"row {i}",) for i in range(500)])
    con.commit()
    con.close()
    env = tiffin_env(tmp_path / "home")
    out = tmp_path / "b"
    tiffin(["backup", "sqlite", "local", str(out), "--file", str(db)], env)
    [name] = backups(out)
    r = tiffin(["drill", "local", str(out), "latest", "--into", "sqlite"], env)
    assert summary(r, name) == "1 table, 500 rows"
    path = out / (name + ".manifest.json")
    m = json.loads(path.read_text())
    m["source"]["tables"]["t"] = 600
    path.write_text(json.dumps(m))
    r = tiffin(["drill", "local", str(out), name, "--into", "sqlite"], env, expect=1)
    assert f"Drill of {name} FAILED: table t has 500 rows; the backup held 600" in r.stderr


def test_a_drill_mails_its_report_like_a_backup(smtp_server, tmp_path):
    root = tmp_path / "src" / "data"
    root.mkdir(parents=True)
    (root / "a.txt").write_text("a" * 1000)
    addr = f"drill-{os.getpid()}-{time.monotonic_ns()}@noodles.example"
    env = tiffin_env(
        tmp_path / "home",
        HOSTNAME="ramen-drill-0",
        TIFFIN_SMTP_URL=f"smtp://127.0.0.1:{smtp_server.port}",
    )
    out = tmp_path / "b"
    tiffin(["backup", "data", "local", str(out), "--dir", str(root)], env)
    [name] = backups(out)
    tiffin(["drill", "local", str(out), name, "--into", "dir", "--email", addr], env)
    (out / name).write_bytes(b"garbage")
    tiffin(["drill", "local", str(out), name, "--into", "dir", "--email", addr], env, expect=1)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        mails = [m for m in smtp_server.messages() if addr in str(m["To"])]
        if len(mails) >= 2:
            break
        time.sleep(0.2)
    assert [m["Subject"] for m in mails] == [
        "Drill result for ramen-drill-0: OK",
        "Drill result for ramen-drill-0: FAILED",
    ]
    assert f"Drill of {name} passed: 1 file, 1,000 bytes" in mails[0].get_content()
    assert f"Drill of {name} FAILED:" in mails[1].get_content()


def test_a_drill_needing_a_postgresql_server_not_installed_names_the_package(tmp_path):
    name = plant(tmp_path / "b", "pgsql", pg_dump("", True), True)
    path = tmp_path / "b" / (name + ".manifest.json")
    m = json.loads(path.read_text())
    m["source"]["dump_tool"] = "pg_dump 99"
    path.write_text(json.dumps(m))
    env = tiffin_env(tmp_path / "home")
    r = tiffin(["drill", "local", str(tmp_path / "b"), name, "--into", "pgsql"], env, expect=1)
    assert r.stderr.strip() == (
        f"Drill of {name} FAILED: a scratch PostgreSQL 99 server (or newer) is needed to load "
        "the dump into, and none is installed here: install postgresql-99"
    )

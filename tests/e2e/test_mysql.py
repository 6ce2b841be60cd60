"""MySQL/MariaDB end to end: populate, back up, drop, restore, compare rows."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.data import populate_mysql
from tests.e2e.helpers import backups, leftovers, manifest, tiffin
from tests.servers.env import tiffin_env


@pytest.fixture
def env(mariadb, tmp_path):
    return tiffin_env(tmp_path / "home", **mariadb.client_env(), HOSTNAME="ramen-sql-0")


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_mysql_round_trip_restores_rows_routines_and_triggers(mariadb, env, tmp_path, compress):
    populate_mysql(mariadb, "shop_" + compress)
    out = tmp_path / "backups"
    r = tiffin(
        [
            "backup",
            "mysql",
            "local",
            str(out),
            *mariadb.conn_args(),
            "--database",
            "shop_" + compress,
            "--compress",
            compress,
        ],
        env,
    )
    [name] = backups(out)
    suffix = ".sql.gz" if compress == "gzip" else ".sql.zst"
    assert name.startswith("ramen-sql-0_") and name.endswith("_UTC" + suffix)
    size = (out / name).stat().st_size
    assert f"Backup {name} completed. Its (compressed) size is {size} bytes." in r.stdout
    m = manifest(out, name)
    assert m["size"] == size and m["source"]["consistency"] == "single-transaction"

    mariadb.sql(f"DROP DATABASE shop_{compress}")
    tiffin(["restore", "local", str(out), "latest", "--into", "mysql", *mariadb.conn_args()], env)
    db = "shop_" + compress
    assert mariadb.sql("SELECT COUNT(*), SUM(price) FROM items", db) == "50\t1837.5"
    assert mariadb.sql("SELECT COUNT(*) FROM cheap", db) == "7"
    assert (
        mariadb.sql(f"SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='{db}'")
        == "1"
    )
    assert (
        mariadb.sql(f"SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='{db}'")
        == "1"
    )


def test_single_database_restores_under_another_name(mariadb, env, tmp_path):
    populate_mysql(mariadb, "src_db", rows=5)
    out = tmp_path / "b"
    tiffin(
        ["backup", "mysql", "local", str(out), *mariadb.conn_args(), "--database", "src_db"], env
    )
    [name] = backups(out)
    tiffin(
        [
            "restore",
            "local",
            str(out),
            name,
            "--into",
            "mysql",
            "--database",
            "copy_db",
            *mariadb.conn_args(),
        ],
        env,
    )
    assert mariadb.sql("SELECT COUNT(*) FROM items", "copy_db") == "5"


def test_all_databases_by_default_and_myisam_means_lock(mariadb, env, tmp_path):
    populate_mysql(mariadb, "inno_all", rows=3)
    populate_mysql(mariadb, "isam_all", engine="MyISAM", rows=4)
    out = tmp_path / "b"
    r = tiffin(["backup", "mysql", "local", str(out), *mariadb.conn_args()], env)
    [name] = backups(out)
    m = manifest(out, name)
    assert m["source"]["consistency"] == "lock"
    assert {"inno_all", "isam_all"} <= set(m["source"]["databases"])
    assert "Consistency: lock" in r.stdout
    mariadb.sql("DROP DATABASE inno_all; DROP DATABASE isam_all")
    tiffin(["restore", "local", str(out), name, "--into", "mysql", *mariadb.conn_args()], env)
    assert mariadb.sql("SELECT COUNT(*) FROM items", "isam_all") == "4"
    assert mariadb.sql("SELECT COUNT(*) FROM items", "inno_all") == "3"


def test_restore_output_writes_the_plain_dump(mariadb, env, tmp_path):
    populate_mysql(mariadb, "plain_db", rows=2)
    out = tmp_path / "b"
    tiffin(
        ["backup", "mysql", "local", str(out), *mariadb.conn_args(), "--database", "plain_db"], env
    )
    [name] = backups(out)
    dump = tmp_path / "dump.sql"
    tiffin(["restore", "local", str(out), name, "--output", str(dump)], env)
    text = dump.read_text()
    assert "CREATE TABLE `items`" in text and "name-1" in text
    r = tiffin(["restore", "local", str(out), name, "--output", "-"], env)
    assert r.stdout == text


def test_concurrent_transfers_keep_the_sum_in_an_innodb_dump(mariadb, env, tmp_path):
    db = "bank"
    mariadb.sql(f"DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}")
    # a_ and z_ are dumped before and after a large filler table: without one snapshot, a
    # transfer committed in between would show in z_ but not in a_.
    mariadb.sql(
        "CREATE TABLE a_acct (id INT PRIMARY KEY, balance INT) ENGINE=InnoDB;"
        "CREATE TABLE z_acct (id INT PRIMARY KEY, balance INT) ENGINE=InnoDB;"
        "CREATE TABLE m_filler (id INT PRIMARY KEY AUTO_INCREMENT, pad CHAR(200)) ENGINE=InnoDB;"
        "INSERT INTO a_acct VALUES (1, 1000000); INSERT INTO z_acct VALUES (1, 0);"
        "INSERT INTO m_filler (pad) SELECT REPEAT('x', 200) FROM seq_1_to_300000;",
        db,
    )
    stop = threading.Event()

    def transfers() -> None:
        feeder = subprocess.Popen(
            [*mariadb.tcp_client_argv(db)],
            stdin=subprocess.PIPE,
            env={**tiffin_env(), "MYSQL_PWD": mariadb.password},
            stdout=subprocess.DEVNULL,
        )
        assert feeder.stdin
        while not stop.is_set():
            feeder.stdin.write(
                b"START TRANSACTION; UPDATE a_acct SET balance = balance - 7;"
                b" UPDATE z_acct SET balance = balance + 7; COMMIT;\n" * 20
            )
            feeder.stdin.flush()
            time.sleep(0.001)
        feeder.stdin.close()
        feeder.wait()

    writer = threading.Thread(target=transfers)
    writer.start()
    try:
        time.sleep(0.3)
        out = tmp_path / "b"
        tiffin(
            [
                "backup",
                "mysql",
                "local",
                str(out),
                *mariadb.conn_args(),
                "--database",
                db,
                "--compress",
                "none",
            ],
            env,
        )
    finally:
        stop.set()
        writer.join()
    [name] = backups(out)
    assert manifest(out, name)["source"]["consistency"] == "single-transaction"
    tiffin(
        [
            "restore",
            "local",
            str(out),
            name,
            "--into",
            "mysql",
            "--database",
            "bank_copy",
            *mariadb.conn_args(),
        ],
        env,
    )
    a = int(mariadb.sql("SELECT balance FROM a_acct", "bank_copy"))
    z = int(mariadb.sql("SELECT balance FROM z_acct", "bank_copy"))
    assert a + z == 1000000 and z > 0, (a, z)


def test_dump_failing_midway_fails_and_leaves_nothing(mariadb, env, tmp_path):
    """A view whose base table was dropped makes the dump fail after other tables streamed."""
    db = "broken_db"
    mariadb.sql(f"DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}")
    mariadb.sql(
        "CREATE TABLE a_first (id INT PRIMARY KEY, pad CHAR(200)) ENGINE=InnoDB;"
        "INSERT INTO a_first SELECT seq, REPEAT('y', 200) FROM seq_1_to_20000;"
        "CREATE TABLE gone (id INT); CREATE VIEW z_view AS SELECT * FROM gone; DROP TABLE gone;",
        db,
    )
    out = tmp_path / "b"
    out.mkdir()
    try:
        r = tiffin(
            ["backup", "mysql", "local", str(out), *mariadb.conn_args(), "--database", db],
            env,
            expect=1,
        )
    finally:
        mariadb.sql(f"DROP DATABASE {db}")  # the broken view would fail other tests' dumps
    assert "FAILED" in r.stderr and "z_view" in r.stderr and "mariadb-dump" in r.stderr, r.stderr
    assert r.stderr.startswith("Backup ramen-sql-0_")
    assert leftovers(out) == []


def test_wrong_password_is_one_sentence_and_exit_1(mariadb, tmp_path):
    env = tiffin_env(tmp_path / "home", TIFFIN_DB_PASSWORD="not-the-password")
    out = tmp_path / "b"
    r = tiffin(["backup", "mysql", "local", str(out), *mariadb.conn_args()], env, expect=1)
    assert "Access denied" in r.stderr and "not-the-password" not in r.stderr
    assert leftovers(out) == []


def test_password_file_works(mariadb, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(mariadb.password + "\n")
    env = tiffin_env(tmp_path / "home")
    populate_mysql(mariadb, "pwfile_db", rows=1)
    tiffin(
        [
            "backup",
            "mysql",
            "local",
            str(tmp_path / "b"),
            *mariadb.conn_args(),
            "--password-file",
            str(pw),
            "--database",
            "pwfile_db",
        ],
        env,
    )
    assert len(backups(tmp_path / "b")) == 1


def test_client_config_file_is_used(mariadb, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".my.cnf").write_text(f"[client]\npassword={mariadb.password}\n")
    (home / ".my.cnf").chmod(0o600)
    populate_mysql(mariadb, "mycnf_db", rows=1)
    tiffin(
        [
            "backup",
            "mysql",
            "local",
            str(tmp_path / "b"),
            *mariadb.conn_args(),
            "--database",
            "mycnf_db",
        ],
        tiffin_env(home),
    )
    assert len(backups(tmp_path / "b")) == 1


def test_full_disk_fails_and_leaves_nothing(mariadb, env, small_tmpfs: Path):
    db = "big_db"
    mariadb.sql(f"DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}")
    mariadb.sql(
        "CREATE TABLE t (id INT PRIMARY KEY, pad VARCHAR(300)) ENGINE=InnoDB;"
        "INSERT INTO t SELECT seq, SHA2(seq, 256) FROM seq_1_to_40000;",
        db,
    )
    r = tiffin(
        [
            "backup",
            "mysql",
            "local",
            str(small_tmpfs),
            *mariadb.conn_args(),
            "--database",
            db,
            "--compress",
            "none",
        ],
        env,
        expect=1,
    )
    assert "full" in r.stderr, r.stderr
    assert leftovers(small_tmpfs) == []

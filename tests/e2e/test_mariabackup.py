"""mysql --physical end to end: mariabackup streamed to a target under a write load, restored
into a fresh data directory, a server started on it, rows compared; and its failures."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.crontab import Crontab
from tests.e2e.helpers import backups, manifest, tiffin
from tests.faults.midstream import wait_for
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB
from tests.servers.proc import SHARED_TMP

BINLOG = ("--log-bin=bin", "--server-id=7", "--binlog-format=ROW")


@pytest.fixture(scope="module")
def source() -> Iterator[MariaDB]:
    """A MariaDB with binary logs and a shop of ~20 MB (a backup takes a moment)."""
    server = MariaDB(server_args=BINLOG).start()
    try:
        server.sql(
            "CREATE DATABASE shop;"
            "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40), pad TEXT);"
            "CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, at DOUBLE);"
            "CREATE TABLE shop.lines (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT);"
            "CREATE TABLE shop.legacy (id INT) ENGINE=MyISAM;"
            "INSERT INTO shop.legacy VALUES (1),(2); USE shop;"
            "INSERT INTO shop.items SELECT seq, CONCAT('item-', seq), REPEAT(MD5(seq), 12) "
            "FROM seq_1_to_40000;"
        )
        yield server
    finally:
        server.close()


@pytest.fixture
def env(source: MariaDB, tmp_path: Path) -> dict[str, str]:
    return tiffin_env(tmp_path / "home", **source.client_env(), HOSTNAME="ramen-db-0")


class Writer:
    """Commits an order and its line in one transaction, over and over, until stopped."""

    def __init__(self, server: MariaDB) -> None:
        self.server = server
        self.stop = threading.Event()
        self.commits = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.server.sql(
                "START TRANSACTION; INSERT INTO shop.orders (at) VALUES (UNIX_TIMESTAMP(NOW(6)));"
                "INSERT INTO shop.lines (order_id) VALUES (LAST_INSERT_ID()); COMMIT;"
            )
            self.commits += 1

    def __enter__(self) -> Writer:
        self.thread.start()
        wait_for(lambda: self.commits >= 3, "the writer's first commits")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def orders_logged(server: MariaDB, last: str, position: int) -> int:
    """Return how many rows the binary logs of SERVER insert into shop.orders, from the first
    log up to LAST at POSITION."""
    logs = sorted(p.name for p in server.datadir.glob("bin.[0-9]*"))
    upto = logs[: logs.index(last) + 1]
    total = 0
    for log in upto:
        cmd = ["mariadb-binlog", "--no-defaults", "--base64-output=decode-rows", "-v"]
        if log == last:
            cmd.append(f"--stop-position={position}")
        text = subprocess.run(
            [*cmd, str(server.datadir / log)], capture_output=True, text=True, check=True
        ).stdout
        total += text.count("### INSERT INTO `shop`.`orders`")
    return total


def bookkeeping_peak(tmp: Path, stop: threading.Event, peak: list[int]) -> None:
    """Until STOP, record the most bytes seen under TMP (mariabackup's --target-dir)."""
    while not stop.is_set():
        with contextlib.suppress(OSError):  # a file removed while it was counted
            peak[0] = max(peak[0], sum(p.lstat().st_size for p in tmp.rglob("*")))
        time.sleep(0.01)


def test_physical_backup_under_writes_restores_into_a_server_with_the_same_rows(
    source: MariaDB, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "backups"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    stop, peak = threading.Event(), [0]
    watcher = threading.Thread(target=bookkeeping_peak, args=(tmp, stop, peak), daemon=True)
    watcher.start()
    with Writer(source):
        r = tiffin(
            ["backup", "mysql", "local", str(out), "--physical", "--compress", "zstd",
             *source.conn_args()],
            {**env, "TMPDIR": str(tmp)},
        )  # fmt: skip
    stop.set()
    watcher.join()
    [name] = backups(out)
    assert name.startswith("ramen-db-0_") and name.endswith("_UTC.mariabackup.xb.zst")
    size = (out / name).stat().st_size
    assert f"Backup {name} completed. Its (compressed) size is {size} bytes." in r.stdout
    assert peak[0] < 1 << 20, f"mariabackup's temporary folder held {peak[0]} bytes"
    assert os.listdir(tmp) == [], "the temporary folder was left behind"
    m = manifest(out, name)
    src = m["source"]
    assert m["what"] == "mariabackup" and src["physical"] == "mariabackup"
    assert src["tables"]["shop"] == ["items", "legacy", "lines", "orders"]
    assert src["rows"]["shop"]["items"] == 40000
    coords = src["binlog"]
    assert coords["file"].startswith("bin.") and coords["position"] > 4
    assert coords["server_id"] == 7 and coords["gtid"].startswith("0-7-")
    assert "Maria-S3cret-pw" not in (out / (name + ".manifest.json")).read_text()

    # restore into a fresh data directory, start a server on it, compare rows
    copy = MariaDB()
    try:
        r = tiffin(["restore", "local", str(out), name, "--into", "mysqldata",
                    "--dir", str(copy.datadir)], env)  # fmt: skip
        assert f"mariadbd --datadir={copy.datadir} --user=mysql" in r.stdout
        assert copy.datadir.stat().st_uid == pwd.getpwnam("mysql").pw_uid
        assert [p.name for p in copy.workdir.iterdir() if ".tiffin-" in p.name] == []
        copy.start()
        items = "SELECT COUNT(*), SUM(CRC32(pad)) FROM shop.items"
        assert copy.sql(items) == source.sql(items)
        assert copy.sql("SELECT COUNT(*) FROM shop.legacy") == "2"
        orders = int(copy.sql("SELECT COUNT(*) FROM shop.orders"))
        assert orders > 0
        # the copy is one consistent moment: every order's line came with it, none more
        assert copy.sql("SELECT COUNT(*) FROM shop.lines") == str(orders)
        # and that moment is the one the manifest's coordinates name: the binary log holds
        # exactly as many orders up to them
        assert orders_logged(source, coords["file"], coords["position"]) == orders
        # the server logs in users of the source, with their passwords
        assert copy.sql("SELECT COUNT(*) FROM mysql.global_priv WHERE User='tiffin'") == "2"
    finally:
        copy.close()


def test_restore_refuses_a_data_directory_that_is_not_empty(
    source: MariaDB, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "b"
    tiffin(["backup", "mysql", "local", str(out), "--physical", *source.conn_args()], env)
    datadir = tmp_path / "data"
    datadir.mkdir()
    (datadir / "keep.txt").write_text("mine")
    r = tiffin(["restore", "local", str(out), "latest", "--into", "mysqldata",
                "--dir", str(datadir)], env, expect=1)  # fmt: skip
    assert "is not an empty folder" in r.stderr
    assert sorted(os.listdir(datadir)) == ["keep.txt"]
    r = tiffin(["restore", "local", str(out), "latest", "--into", "mysqldata"], env, expect=2)
    assert "--into mysqldata needs the destination: --dir DIR" in r.stderr
    r = tiffin(["restore", "local", str(out), "latest", "--into", "mysql",
                *source.conn_args()], env, expect=1)  # fmt: skip
    assert "with that --into: the newest is " in r.stderr  # the physical backup, and how
    assert "restored --into mysqldata --dir DATADIR" in r.stderr
    owned = tmp_path / "owned"
    tiffin(["restore", "local", str(out), "latest", "--into", "mysqldata", "--dir", str(owned),
            "--owner", "nobody"], env)  # fmt: skip
    nobody = pwd.getpwnam("nobody").pw_uid
    assert {p.stat().st_uid for p in [owned, *owned.rglob("*")]} == {nobody}
    args = ["--dir", str(tmp_path / "x"), "--owner", "no-such-user-here"]
    r = tiffin(
        ["restore", "local", str(out), "latest", "--into", "mysqldata", *args], env, expect=1
    )
    assert "there is no OS user no-such-user-here to own the data directory" in r.stderr
    assert not (tmp_path / "x").exists()


def test_drill_restores_a_physical_backup_into_scratch_and_checks_its_tables(
    source: MariaDB, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "b"
    tmp = Path(tempfile.mkdtemp(prefix="tiffin-drill-tmp-", dir=SHARED_TMP))  # `nobody` enters it
    tmp.chmod(0o755)
    try:
        drill_and_lifecycle(source, {**env, "TMPDIR": str(tmp)}, out, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def drill_and_lifecycle(source: MariaDB, env: dict[str, str], out: Path, tmp: Path) -> None:
    tiffin(["backup", "mysql", "local", str(out), "--physical", *source.conn_args()], env)
    [name] = backups(out)
    r = tiffin(["drill", "local", str(out), name], env)
    assert f"Drill of {name} passed: " in r.stdout and "4 tables" in r.stdout
    r = tiffin(["drill", "local", str(out), "latest", "--into", "mysqldata"], env)
    assert f"Drill of {name} passed: " in r.stdout
    r = tiffin(["drill", "local", str(out), "latest", "--physical"], env)  # its kind found
    assert f"Drill of {name} passed: " in r.stdout
    assert json.loads((out / (name + ".drill.json")).read_text())["passed"] is True
    assert os.listdir(tmp) == []  # the scratch server and its folder are gone

    # the lifecycle knows the kind: list, verify, prune
    [listed] = json.loads(tiffin(["list", "local", str(out), "--json"], env).stdout)
    assert listed["what"] == "mariabackup" and listed["complete"] is True
    assert f"OK {name} (" in tiffin(["verify", "local", str(out), "latest"], env).stdout
    tiffin(["backup", "mysql", "local", str(out), "--physical", *source.conn_args()], env)
    tiffin(["backup", "mysql", "local", str(out), *source.conn_args()], env)  # a dump beside
    r = tiffin(["prune", "local", str(out), "--keep-last", "1"], env)
    kinds = sorted(n.rsplit("_UTC", 1)[1] for n in backups(out))
    assert kinds == [".mariabackup.xb.gz", ".sql.gz"], r.stdout

    # a backup that lacks a table its manifest records fails its drill
    [newest] = [n for n in backups(out) if "mariabackup" in n]
    m = manifest(out, newest)
    m["source"]["tables"]["shop"].append("vanished")
    (out / (newest + ".manifest.json")).write_text(json.dumps(m))
    r = tiffin(["drill", "local", str(out), newest], env, expect=1)
    assert f"Drill of {newest} FAILED: table shop.vanished is missing" in r.stderr
    assert os.listdir(tmp) == []


def test_schedule_and_run_take_physical_for_mysql(source: MariaDB, tmp_path: Path) -> None:
    cron = Crontab(tmp_path)
    env = cron.env(**source.client_env())
    out = tmp_path / "b"
    args = ["local", str(out), "--physical", "--at", "03:00", *source.conn_args()]
    tiffin(["schedule", "mysql", *args], env)
    [line] = [ln for ln in cron.text().splitlines() if "# tiffin:" in ln]
    assert " backup mysql file://" in line and " --physical" in line
    assert "Maria-S3cret-pw" not in line
    config = tmp_path / "tiffin.toml"
    config.write_text(
        f'[jobs.nightly-physical]\nwhat = "mysql"\nphysical = true\nto = "file://{out}"\n'
        f'host = "{source.host}"\nport = {source.port}\nuser = "tiffin"\ncompress = "zstd"\n'
    )
    r = tiffin(["run", "nightly-physical", "--config", str(config)], env)
    [name] = backups(out)
    assert name.endswith("_UTC.mariabackup.xb.zst") and f"Backup {name} completed." in r.stdout


def test_physical_backup_over_the_servers_socket(source: MariaDB, tmp_path: Path) -> None:
    out = tmp_path / "b"
    env = tiffin_env(tmp_path / "home")
    tiffin(["backup", "mysql", "local", str(out), "--physical", "--socket", str(source.socket),
            "--user", "root"], env)  # fmt: skip
    [name] = backups(out)
    src = manifest(out, name)["source"]
    assert src["identity"]["server"] == str(source.socket) and src["binlog"]["server_id"] == 7

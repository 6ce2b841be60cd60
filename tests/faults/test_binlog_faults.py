"""Faults around `tiffin binlog` made real: the server stopped during --follow, the target
stopped while it ships, the network cut beyond --timeout, binlog killed mid-ship. Afterwards
nothing is half-published and a restore to the end reaches the last commit."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.binlogs import binlog_server, master_status
from tests.e2e.helpers import tiffin, tiffin_exe
from tests.faults.places import make_place
from tests.faults.tried import tried
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB


@pytest.fixture
def source() -> Iterator[MariaDB]:
    s = binlog_server()
    try:
        s.sql(
            "CREATE DATABASE shop;"
            "CREATE TABLE shop.t (id INT PRIMARY KEY AUTO_INCREMENT, pad LONGTEXT) ENGINE=InnoDB;"
        )
        yield s
    finally:
        s.close()


def write(server: MariaDB, n: int = 1) -> None:
    server.sql("INSERT INTO shop.t (pad) VALUES " + ",".join(["('x')"] * n))


def start_follow(target: list[str], server: MariaDB, env: dict[str, str], *extra: str):
    args = [tiffin_exe(), "binlog", *target, *server.conn_args(), "--label", "shop", "--follow"]
    return subprocess.Popen(
        [*args, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(check, seconds: float = 30, every: float = 0.2) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(every)


def archived(folder: Path) -> list[str]:
    return sorted(p.name[: -len(".json")] for p in (folder / "shop.binlog").glob("*.json"))


def assert_whole(folder: Path) -> None:
    """Every archived log's bytes match its record, and nothing else is published."""
    arch = folder / "shop.binlog"
    for rec_path in arch.glob("*.json"):
        rec = json.loads(rec_path.read_text())
        data = (arch / rec["stored"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == rec["sha256"]
        assert len(gzip.decompress(data)) == rec["log_size"]
    published = {p.name for p in arch.iterdir() if not p.name.endswith(".partial")}
    records = {json.loads(p.read_text())["stored"] for p in arch.glob("*.json")}
    assert published - records - {p.name for p in arch.glob("*.json")} == set()


def restored_rows(folder_args: list[str], env: dict[str, str], home: Path) -> str:
    fresh = MariaDB(server_args=("--skip-log-bin",)).start()
    try:
        renv = {**env, **fresh.client_env(), "HOME": str(home)}
        tiffin(["restore", *folder_args, "latest", "--into", "mysql", *fresh.conn_args()], renv)
        return fresh.sql("SELECT COUNT(*) FROM shop.t")
    finally:
        fresh.close()


@tried(
    "fault",
    "The database server stops while `binlog --follow` runs",
    "a real MariaDB writing binary logs is stopped (SIGTERM) for 3 s under --follow, "
    "started again, written to, then binlog is sent SIGTERM",
    "binlog keeps retrying and exits 0; every log, the one closed by the shutdown included, "
    "is archived whole; a restore of the dump plus the logs holds every row written",
)
def test_server_stopped_during_follow(source, tmp_path):
    out = tmp_path / "b"
    env = tiffin_env(tmp_path / "home", **source.client_env())
    tiffin(["backup", "mysql", "local", str(out), *source.conn_args(), "--label", "shop"], env)
    proc = start_follow(["local", str(out)], source, env, "--max-lag", "2", "--timeout", "60")
    try:
        write(source, 5)
        source.stop()
        time.sleep(3)
        source.start()
        write(source, 7)
        last, _ = master_status(source)
        wait_for(lambda: last in archived(out))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert_whole(out)
    assert restored_rows(["local", str(out)], env, tmp_path / "h2") == "12"


@tried(
    "fault",
    "The target stops while `binlog --follow` ships",
    "the FTP server holding the archive is stopped for 4 s while --follow ships a steady "
    "write load, then started again",
    "binlog retries within --timeout and catches up, exit 0 on SIGTERM; no stored log "
    "without its record or differing from it; a restore reaches the last commit",
)
def test_target_stopped_while_shipping(source, tmp_path, request):
    place = make_place("ftp", request, tmp_path / "home")
    assert place.server is not None and place.folder is not None
    env = {**place.env, **source.client_env()}
    tiffin(["backup", "mysql", *place.args, *source.conn_args(), "--label", "shop"], env)
    proc = start_follow(place.args, source, env, "--max-lag", "2", "--timeout", "60")
    try:
        for _ in range(10):
            write(source, 50)
            time.sleep(0.2)
        place.server.stop()
        try:
            for _ in range(10):
                write(source, 50)
                time.sleep(0.4)
        finally:
            place.server.start()
        last, _ = master_status(source)
        wait_for(lambda: last in archived(place.folder), 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert_whole(place.folder)
    assert restored_rows(place.args, env, tmp_path / "h2") == "1000"


@tried(
    "fault",
    "The network to the database server is cut for longer than --timeout",
    "the MariaDB server is frozen (SIGSTOP) under `binlog --follow --timeout 3`",
    "exit 1 within seconds, `Binlog archive FAILED:` naming --timeout; the metrics file "
    "says tiffin_archive_last_status 0",
)
def test_network_cut_beyond_timeout(source, tmp_path):
    out = tmp_path / "b"
    metrics = tmp_path / "tiffin.prom"
    env = tiffin_env(tmp_path / "home", **source.client_env())
    extra = ("--max-lag", "2", "--timeout", "3", "--metrics-file", str(metrics))
    proc = start_follow(["local", str(out)], source, env, *extra)
    try:
        wait_for(lambda: archived(out) != [])
        with source.paused():
            _, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    assert "Binlog archive FAILED" in stderr and "--timeout" in stderr
    assert "Traceback" not in stderr
    status = [
        ln for ln in metrics.read_text().splitlines() if ln.startswith("tiffin_archive_last_status")
    ]
    assert status and status[0].endswith(" 0.0")


@tried(
    "fault",
    "`tiffin binlog` is killed (SIGKILL) while it ships a log",
    "40 MB of binary log is written; binlog is killed once its temporary file appears at the "
    "target, then run again",
    "nothing under a log's final name until whole; the next run removes the leftover, ships "
    "every log once; a restore of the dump plus the logs reaches the last commit",
)
def test_binlog_killed_mid_ship(source, tmp_path):
    out = tmp_path / "b"
    env = tiffin_env(tmp_path / "home", **source.client_env())
    conn = [*source.conn_args(), "--label", "shop"]
    tiffin(["backup", "mysql", "local", str(out), *conn], env)
    for _ in range(40):
        source.sql("INSERT INTO shop.t (pad) VALUES (REPEAT(UUID(), 30000))")  # ~1 MB a row
    args = [tiffin_exe(), "binlog", "local", str(out), *conn, "--compress-level", "9"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    arch = out / "shop.binlog"
    try:
        wait_for(
            lambda: arch.is_dir() and any(p.suffix == ".partial" for p in arch.iterdir()),
            every=0.005,
        )
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.communicate(timeout=60)
    for p in arch.iterdir():  # a final name holds a whole log, or is not there
        if not p.name.endswith((".partial", ".json")) and (arch / f"{p.name}.json").exists():
            assert (
                hashlib.sha256(p.read_bytes()).hexdigest() in (arch / f"{p.name}.json").read_text()
            )
    tiffin(["binlog", "local", str(out), *conn], env)
    assert not any(p.name.endswith(".partial") for p in arch.iterdir())
    assert restored_rows(["local", str(out)], env, tmp_path / "h2") == "40"

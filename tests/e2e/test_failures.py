"""Failures made real: each ends in the right exit status, one sentence, nothing published."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import backups, leftovers, tiffin, tiffin_exe
from tests.servers.env import tiffin_env


def children_of(pid: int) -> list[tuple[int, str]]:
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(p), cmd))
    return found


@pytest.fixture
def big_db(mariadb):
    mariadb.sql("CREATE DATABASE IF NOT EXISTS kill_db")
    mariadb.sql(
        "CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY, pad CHAR(255));"
        "INSERT IGNORE INTO t SELECT seq, REPEAT('k', 255) FROM seq_1_to_400000;",
        "kill_db",
    )
    return "kill_db"


def start_backup(args, env):
    return subprocess.Popen(
        [tiffin_exe(), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_child(pid: int, name: str, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child, cmd in children_of(pid):
            if name in cmd:
                return child
        time.sleep(0.005)
    raise AssertionError(f"no {name} child appeared")


def test_killed_dump_process_fails_and_leaves_nothing(mariadb, big_db, tmp_path):
    env = tiffin_env(tmp_path / "home", **mariadb.client_env())
    out = tmp_path / "b"
    proc = start_backup(
        [
            "backup",
            "mysql",
            "local",
            str(out),
            *mariadb.conn_args(),
            "--database",
            big_db,
            "--compress",
            "none",
        ],
        env,
    )
    dump = wait_for_child(proc.pid, "dump")
    time.sleep(0.2)
    os.kill(dump, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "FAILED" in err and "killed by signal 9" in err
    assert leftovers(out) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_tiffin_stops_children_and_cleans_up(mariadb, big_db, tmp_path, sig):
    env = tiffin_env(tmp_path / "home", **mariadb.client_env())
    out = tmp_path / "b"
    proc = start_backup(
        [
            "backup",
            "mysql",
            "local",
            str(out),
            *mariadb.conn_args(),
            "--database",
            big_db,
            "--compress",
            "none",
        ],
        env,
    )
    dump = wait_for_child(proc.pid, "dump")
    time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode not in (0, None), err
    assert "Traceback" not in err
    time.sleep(0.1)
    assert not Path(f"/proc/{dump}").exists() or "Z" in Path(f"/proc/{dump}/stat").read_text()
    assert leftovers(out) == []


def test_an_existing_backup_is_never_overwritten(tmp_path):
    from datetime import UTC, datetime, timedelta

    from tiffin.naming import make_name

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("one")
    out = tmp_path / "b"
    out.mkdir()
    now = datetime.now(UTC)
    # Every name the run can take in the next seconds is already there.
    taken = [make_name("h", "data", now + timedelta(seconds=s), "gzip", False) for s in range(8)]
    for name in taken:
        (out / name).write_bytes(b"precious")
    r = tiffin(
        ["backup", "data", "local", str(out), "--dir", str(tmp_path / "data"), "--label", "h"],
        tiffin_env(tmp_path / "home"),
        expect=1,
    )
    assert "exists already" in r.stderr and "never overwrites" in r.stderr
    assert all((out / n).read_bytes() == b"precious" for n in taken)
    assert sorted(os.listdir(out)) == sorted(taken)


def test_restore_refuses_a_backup_without_manifest_unless_forced(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("one")
    env = tiffin_env(tmp_path / "home")
    out = tmp_path / "b"
    tiffin(["backup", "data", "local", str(out), "--dir", str(tmp_path / "data")], env)
    [name] = backups(out)
    (out / (name + ".manifest.json")).unlink()
    r = tiffin(
        ["restore", "local", str(out), name, "--output", str(tmp_path / "x.tar")], env, expect=1
    )
    assert "incomplete" in r.stderr and "--force" in r.stderr
    assert not (tmp_path / "x.tar").exists()
    tiffin(
        ["restore", "local", str(out), name, "--output", str(tmp_path / "x.tar"), "--force"], env
    )
    assert (tmp_path / "x.tar").stat().st_size > 0


def test_restore_refuses_a_corrupted_byte_and_writes_nothing(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_bytes(os.urandom(50_000))
    env = tiffin_env(tmp_path / "home")
    out = tmp_path / "b"
    tiffin(
        [
            "backup",
            "data",
            "local",
            str(out),
            "--dir",
            str(tmp_path / "data"),
            "--compress",
            "none",
        ],
        env,
    )
    [name] = backups(out)
    stored = bytearray((out / name).read_bytes())
    stored[20_000] ^= 0xFF
    (out / name).write_bytes(stored)
    r = tiffin(
        ["restore", "local", str(out), name, "--into", "dir", "--dir", str(tmp_path / "r")],
        env,
        expect=1,
    )
    assert "sha256" in r.stderr
    assert not (tmp_path / "r").exists() or list((tmp_path / "r").iterdir()) == []
    r = tiffin(
        ["restore", "local", str(out), name, "--output", str(tmp_path / "o.tar")], env, expect=1
    )
    assert not (tmp_path / "o.tar").exists() and not (tmp_path / "o.tar.partial").exists()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["backup"],
        ["backup", "oracle", "local", "/tmp/x"],
        ["backup", "mysql", "tape", "x"],
        ["backup", "mysql", "local", "/tmp/x", "--compress", "rar"],
        ["backup", "mysql", "local", "/tmp/x", "--port", "many"],
        ["backup", "mysql", "local", "/tmp/x", "--consistency", "maybe"],
        ["backup", "mysql", "local", "/tmp/x", "--label", "bad label"],
        ["backup", "mysql", "ftp", "nohost"],
        ["backup", "mysql", "sftp://h/x"],
        ["backup", "sqlite", "local", "/tmp/x"],
        ["backup", "mysql", "local", "/tmp/x", "../../etc"],
        ["backup", "mysql", "local", "/tmp/x", "--compress", "gzip", "--compress-level", "42"],
        ["restore", "local", "/tmp/x"],
        ["restore", "local", "/tmp/x", "latest"],
        ["restore", "local", "/tmp/x", "../../etc/passwd", "--output", "-"],
        ["restore", "local", "/tmp/x", "latest", "--into", "oracle"],
    ],
)
def test_bad_command_lines_exit_2_with_one_sentence(args, tmp_path):
    r = tiffin(args, tiffin_env(tmp_path / "home"), expect=2)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tiffin: "), r.stderr
    assert "Traceback" not in r.stderr
    assert not Path("/tmp/x").exists()


def test_debug_shows_a_traceback(tmp_path):
    r = tiffin(
        ["backup", "data", "local", str(tmp_path / "b"), "--dir", str(tmp_path / "no"), "--debug"],
        tiffin_env(tmp_path / "home"),
        expect=1,
    )
    assert "Traceback" in r.stderr

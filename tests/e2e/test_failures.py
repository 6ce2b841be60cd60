"""Failures made real: each ends in the right exit status, one sentence, nothing published.

The dump tool killed mid-stream and tiffin itself signalled are tried for every source and
target in tests/faults/ (test_source_faults.py, test_interrupts.py)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.helpers import backups, tiffin
from tests.servers.env import tiffin_env


def test_an_existing_backup_is_never_overwritten_nor_fails_the_run(tmp_path):
    """SPEC §2: an existing backup is never overwritten. A run whose second is taken (by a
    backup of another source under the same label) takes the next free second."""
    from datetime import UTC, datetime, timedelta

    from tiffin.catalog.naming import make_name, parse_name

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("one")
    out = tmp_path / "b"
    out.mkdir()
    now = datetime.now(UTC)
    # Every name the run can take in the next seconds is already there.
    taken = [make_name("h", "data", now + timedelta(seconds=s), "gzip", False) for s in range(8)]
    for name in taken:
        (out / name).write_bytes(b"precious")
    tiffin(
        ["backup", "data", "local", str(out), "--dir", str(tmp_path / "data"), "--label", "h"],
        tiffin_env(tmp_path / "home"),
    )
    assert all((out / n).read_bytes() == b"precious" for n in taken)
    new = sorted(set(os.listdir(out)) - set(taken))
    assert len(new) == 2 and new[1] == new[0] + ".manifest.json", new
    parsed = parse_name(new[0])
    assert parsed is not None
    assert parsed.created >= (now + timedelta(seconds=8)).replace(microsecond=0), new


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


@pytest.mark.parametrize("how", ["ftp", "ssh"])
def test_an_ipv6_server_that_refuses_is_named_in_brackets(how, tmp_path):
    """The failure line names the server as it is written, [::1]:PORT, not ::1:PORT."""
    with socket.socket(socket.AF_INET6) as held:  # bound, never listening: refused
        held.bind(("::1", 0))
        port = held.getsockname()[1]
        (tmp_path / "d").mkdir()
        where = f"u:pw@[::1]:{port}" if how == "ftp" else f"u@[::1]:{port}"
        env = tiffin_env(tmp_path / "home")
        key = tmp_path / "home" / ".ssh" / "id_ed25519"
        key.parent.mkdir(parents=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        r = tiffin(["backup", "data", how, where, "--dir", str(tmp_path / "d")], env, expect=1)
    assert f"server at [::1]:{port}: connection refused" in r.stderr, r.stderr

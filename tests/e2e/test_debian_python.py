"""tiffin on the Python a stock Debian 12 user has (3.11.2), installed so every OS user can
run it. The suite's header names the interpreter it proves (tests/conftest.py)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.e2e.helpers import backups, tiffin
from tests.servers.env import tiffin_env
from tests.servers.proc import SHARED_TMP

REPO = Path(__file__).resolve().parents[2]
DEBIAN_PYTHON = Path("/usr/bin/python3")
MiB = 1 << 20


# Skipped only off Debian and off CI: CI runs on Debian, where the check must hold.
@pytest.mark.skipif(
    not DEBIAN_PYTHON.exists() and not os.environ.get("CI"), reason="no Debian /usr/bin/python3"
)
def test_the_suite_runs_on_debians_own_python():
    assert os.path.realpath(sys.executable) == os.path.realpath(DEBIAN_PYTHON), (
        f"the suite runs on {sys.executable} ({sys.version.split()[0]}), not on Debian's "
        f"{DEBIAN_PYTHON}: make .venv with scripts/test.sh"
    )


def test_folder_restore_and_drill_strip_mode_bits_as_tars_data_filter_and_keep_holes(tmp_path):
    src = tmp_path / "src" / "data"
    (src / "shared").mkdir(parents=True)
    (src / "shared").chmod(0o2775)  # setgid directory
    tool = src / "tool"
    tool.write_bytes(b"#!/bin/sh\necho hi\n")
    tool.chmod(0o4755)  # setuid file
    (src / "open").write_text("anyone may write me\n")
    (src / "open").chmod(0o666)
    (src / "drop").mkdir()
    (src / "drop").chmod(0o1777)  # sticky, world-writable directory
    sparse = src / "disk.img"
    with open(sparse, "wb") as f:  # 64 MiB, of which 2 pages hold data
        f.seek(MiB + 10)
        f.write(b"middle")
        f.seek(64 * MiB - 4)
        f.write(b"tail")
    assert sparse.stat().st_blocks * 512 < MiB
    env = tiffin_env(tmp_path / "home", HOSTNAME="debpy")
    out = tmp_path / "b"
    tiffin(["backup", "data", "local", str(out), "--dir", str(src)], env)
    [name] = backups(out)

    dest = tmp_path / "restored"
    tiffin(["restore", "local", str(out), name, "--into", "dir", "--dir", str(dest)], env)
    got = dest / "data"
    assert (got / "tool").read_bytes() == tool.read_bytes()
    assert (got / "tool").stat().st_mode & 0o7777 == 0o755  # setuid stripped
    assert (got / "shared").stat().st_mode & 0o7777 == 0o755  # setgid, group write stripped
    assert (got / "open").stat().st_mode & 0o7777 == 0o644  # other write stripped
    assert (got / "drop").stat().st_mode & 0o7777 == 0o755  # sticky, other write stripped
    assert (got / "disk.img").stat().st_size == 64 * MiB
    assert (got / "disk.img").read_bytes() == sparse.read_bytes()
    assert (got / "disk.img").stat().st_blocks * 512 < MiB, "the zeros came back as data"

    work = tmp_path / "work"
    work.mkdir()
    r = tiffin(["drill", "local", str(out), name, "--into", "dir", "--dir", str(work)], env)
    assert f"Drill of {name} passed" in r.stdout
    assert list(work.iterdir()) == []


# CI runs as root: there, not being root is a failure of the set-up, not a skip.
@pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"), reason="needs root to switch users"
)
# A prefix with a blank cannot go on a shebang line: the command then starts through sh.
@pytest.mark.parametrize("folder", ["opt", "my opt"])
def test_the_installed_tiffin_runs_as_another_os_user(folder: str) -> None:
    """scripts/install.sh as the README shows it, then a folder backup and restore run as
    `nobody` with the installed command."""
    top = Path(tempfile.mkdtemp(prefix="tiffin-install-", dir=SHARED_TMP))
    try:
        top.chmod(0o755)
        prefix, bindir = top / folder, top / "bin"
        subprocess.run(
            ["bash", str(REPO / "scripts" / "install.sh"), str(prefix), str(bindir)],
            check=True,
            capture_output=True,
            timeout=600,
        )
        home = top / "home"
        (home / "data").mkdir(parents=True)
        (home / "data" / "notes.txt").write_text("kept by nobody\n")
        shutil.chown(home, "nobody", "nogroup")
        shutil.chown(home / "data", "nobody", "nogroup")
        shutil.chown(home / "data" / "notes.txt", "nobody", "nogroup")
        env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "HOSTNAME": "nobody-box"}

        def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(bindir / "tiffin"), *args],
                user="nobody",
                group="nogroup",
                extra_groups=[],
                env=env,
                cwd=home,
                capture_output=True,
                text=True,
                timeout=120,
            )

        r = as_nobody("backup", "data", "local", str(home / "b"))
        assert r.returncode == 0, r.stderr
        assert "completed" in r.stdout
        [name] = backups(home / "b")
        assert (home / "b" / name).stat().st_uid == pwd.getpwnam("nobody").pw_uid
        r = as_nobody("restore", "local", str(home / "b"), name, "--into", "dir", "--dir", "r")
        assert r.returncode == 0, r.stderr
        assert (home / "r" / "data" / "notes.txt").read_text() == "kept by nobody\n"

        # WAL calls start isolated and without site: they still reach every module they
        # need, and a PYTHONPATH in the caller's environment does not choose the code.
        evil = home / "evil" / "tiffin"
        evil.mkdir(parents=True)
        (evil / "__init__.py").write_text("raise SystemExit('the planted tiffin ran')\n")
        env["PYTHONPATH"] = str(home / "evil")
        wal = home / "pg_wal"
        (wal / "archive_status").mkdir(parents=True)
        segments = [f"0000000100000000000000{i:02X}" for i in (1, 2, 3)]
        for i, seg in enumerate(segments):
            (wal / seg).write_bytes(os.urandom(4096) * (i + 1))
            (wal / "archive_status" / f"{seg}.ready").touch()
        for path in [home, *home.rglob("*")]:
            shutil.chown(path, "nobody", "nogroup")
        for seg in segments:  # as PostgreSQL's archiver calls it, one file after another
            r = as_nobody("wal-push", "local", str(home / "arch"), f"pg_wal/{seg}")
            assert r.returncode == 0, r.stderr
            (wal / "archive_status" / f"{seg}.ready").rename(wal / "archive_status" / f"{seg}.done")
        for seg in segments:
            r = as_nobody("wal-fetch", "local", str(home / "arch"), seg, f"back/{seg}")
            assert r.returncode == 0, r.stderr
            assert (home / "back" / seg).read_bytes() == (wal / seg).read_bytes()
        r = as_nobody("wal-fetch", "local", str(home / "arch"), "0000000100000000000000FF", "x")
        assert r.returncode == 1 and "not in the archive" in r.stderr
        r = as_nobody("list", "local", str(home / "b"))  # a command through site, as before
        assert r.returncode == 0 and name in r.stdout, r.stderr
        first = (prefix / "bin" / "tiffin").read_text().splitlines()[0]
        assert first == (f"#!{prefix}/bin/python -IS" if folder == "opt" else "#!/bin/sh")
    finally:
        shutil.rmtree(top, ignore_errors=True)

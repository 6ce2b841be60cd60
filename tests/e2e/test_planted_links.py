"""A symlink, a hard link or a fifo planted where tiffin is about to create a local file never
gets a byte written through it (tiffin/engine/safefile.py): the restore output and its .partial,
a folder target's NAME.partial and its manifest's, the lock file, the secrets file and
systemd unit of a scheduled job, a SQLite restore's .partial."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.crontab import Crontab
from tests.e2e.helpers import backups, tiffin, tiffin_exe
from tests.faults.tried import tried
from tests.servers.env import tiffin_env
from tiffin.engine import lock
from tiffin.job import SourceSpec
from tiffin.sources.identity import identity, key

VICTIM = b"the victim's own bytes\n"
LABEL = "planted"


def plant(kind: str, path: Path, victim: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlink":
        path.symlink_to(victim)
    elif kind == "hardlink":
        os.link(victim, path)
    else:
        os.mkfifo(path)


def names_soon(ext: str) -> list[str]:
    """The names a backup labelled LABEL may take when started within the next 40 seconds."""
    now = int(time.time())
    stamps = [time.strftime("%Y-%m-%d_%H:%M:%S", time.gmtime(now + i)) for i in range(-1, 40)]
    return [f"{LABEL}_{s}_UTC{ext}" for s in stamps]


@dataclass
class Case:
    """What a place needs: where to plant (given the test's folder), the command, its exit."""

    paths: Callable[[Path], list[Path]]
    argv: Callable[[Path], list[str]]
    code: int
    schedule: bool = False
    moves: bool = False  # a backup takes the next free name, leaving the planted one be
    fifo_code: int | None = None  # the exit when a fifo is planted, if not CODE


def _data(root: Path) -> Path:
    src = root / "data"
    src.mkdir(exist_ok=True)
    (src / "menu.txt").write_text("ramen\n" * 50)
    return src


def _stored(root: Path, what: str = "data") -> Path:
    """A folder holding one complete backup (uncompressed) of WHAT."""
    store = root / "store"
    if what == "sqlite":
        import sqlite3

        db = root / "src.db"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE t (i INTEGER)")
            conn.execute("INSERT INTO t VALUES (1), (2)")
        args = ["backup", "sqlite", "local", str(store), "--file", str(db)]
    else:
        args = ["backup", "data", "local", str(store), "--dir", str(_data(root))]
    tiffin([*args, "--compress", "none", "--label", "stored"], tiffin_env(root / "home"))
    return store


def _restore(root: Path, overwrite: bool = False) -> list[str]:
    store = _stored(root)
    out = ["--output", str(root / "out.tar"), *(["--overwrite"] if overwrite else [])]
    return ["restore", "local", str(store), "latest", *out]


def _lock_path(root: Path) -> list[Path]:
    saved = os.environ.get("HOME")
    os.environ["HOME"] = str(root / "home")
    source = key(identity(SourceSpec("data", dir=str(root / "data")))) or ""
    try:
        return [Path(lock.lock_path(LABEL, "data", f"file://{root}/target", source))]
    finally:
        os.environ["HOME"] = saved or ""


def _secrets(root: Path) -> list[Path]:
    folder = root / "home" / ".config" / "tiffin" / "secrets"
    return [folder / f"{jid}.env" for jid in _job_ids(root)]


def _unit(root: Path) -> list[Path]:
    folder = root / "home" / ".config" / "systemd" / "user"
    return [folder / f"tiffin-{jid}.service" for jid in _job_ids(root)]


def _job_ids(root: Path) -> list[str]:
    """The id the scheduled job below gets, found by scheduling it once elsewhere."""
    (root / "probe").mkdir(exist_ok=True)
    probe = Crontab(root / "probe")
    tiffin(_schedule_args(root), probe.env())
    return [jid for jid, _, _ in probe.jobs()]


def _schedule_args(root: Path) -> list[str]:
    where = ["ftp", "u:Pw-4471@127.0.0.1:2121", "b", "--dir", str(root / "data")]
    return ["schedule", "data", *where, "--label", LABEL]


def _backup(root: Path) -> list[str]:
    return ["backup", "data", "local", str(root / "target"), "--dir", str(_data(root))]


CASES = {
    "restore --output: OUT.partial": Case(
        lambda r: [r / "out.tar.partial"], lambda r: _restore(r), 1
    ),
    "restore --output: OUT": Case(lambda r: [r / "out.tar"], lambda r: _restore(r), 1),
    "restore --output --overwrite: OUT": Case(
        # A pipe is written into, never replaced: one no process reads is refused.
        lambda r: [r / "out.tar"],
        lambda r: _restore(r, True),
        0,
        fifo_code=1,
    ),
    "backup to a folder: NAME.partial": Case(
        lambda r: [r / "target" / (n + ".partial") for n in names_soon(".data.tar.gz")],
        _backup,
        0,
        moves=True,  # a NAME.partial makes NAME taken (tiffin.catalog.holdings.free_name)
    ),
    "backup to a folder: the manifest's .partial": Case(
        lambda r: [
            r / "target" / (n + ".manifest.json.partial") for n in names_soon(".data.tar.gz")
        ],
        _backup,
        1,
    ),
    "the lock file": Case(_lock_path, _backup, 1),
    "schedule: the secrets file": Case(_secrets, lambda r: [*_schedule_args(r)], 0, True),
    "schedule --systemd: the unit file": Case(
        _unit, lambda r: [*_schedule_args(r), "--systemd"], 0, True
    ),
    "restore --into sqlite: FILE.partial": Case(
        lambda r: [r / "restored.db.partial"],
        lambda r: [
            "restore",
            "local",
            str(_stored(r, "sqlite")),
            "latest",
            "--into",
            "sqlite",
            "--file",
            str(r / "restored.db"),
        ],
        0,
    ),
}


@tried(
    "hostile",
    "A link planted where tiffin creates a file",
    "before the command runs, a symlink to a victim file, a hard link of it, or a fifo is "
    "planted at the name tiffin is about to create (for a backup, at every name it may take "
    "in the next 40 seconds)",
    "links planted: 27 (9 places x 3 kinds); victims written: 0. The victim's bytes are "
    "untouched; a backup whose NAME.partial is taken stores under the next free name; "
    "otherwise the command exits 1 with one clear `... FAILED` or "
    "`tiffin:` line naming the file (or, where tiffin replaces the name atomically, exits 0 "
    "with a plain file of its own in place of the link); never a traceback",
)
@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo"])
@pytest.mark.parametrize("place", list(CASES))
def test_a_planted_link_is_never_written_through(place: str, kind: str, tmp_path: Path) -> None:
    case = CASES[place]
    root = tmp_path / "t"
    root.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM)
    before = victim.stat()
    argv = case.argv(root)  # builds what the command needs first (a stored backup ...)
    planted = case.paths(root)
    for path in planted:
        plant(kind, path, victim)
    crontab = Crontab(root)
    env = crontab.env() if case.schedule else tiffin_env(root / "home")
    r = tiffin([*argv, "--label", LABEL] if argv[0] == "backup" else argv, env, expect=None)
    code = case.fifo_code if kind == "fifo" and case.fifo_code is not None else case.code
    assert r.returncode == code, f"{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr and "unexpected error" not in r.stderr, r.stderr
    assert victim.read_bytes() == VICTIM
    after = victim.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    if r.returncode == 1:
        [line] = r.stderr.strip().split("\n")
        assert "FAILED" in line or line.startswith("tiffin: "), line
        assert any(str(p) in line for p in planted), line
    if case.moves:  # stored under a name of its own; the planted ones left as they were
        [name] = backups(root / "target")
        assert root / "target" / (name + ".partial") not in planted
        assert all(os.path.lexists(p) for p in planted)
        return
    if argv[0] == "backup":
        assert backups(root / "target") == []
    if r.returncode == 0:  # the name was replaced atomically, or its .partial published
        for path in planted:
            if os.path.lexists(path):
                st = path.lstat()
                assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_size > 0, path


@tried(
    "hostile",
    "restore --output naming a device, a pipe, a link to a device, a folder or closed stdout",
    "`restore --output` (with and without `--overwrite`) of /dev/null, /dev/full, a fifo a "
    "reader drains, a symlink to /dev/null, a folder; `--output -` with standard output closed",
    "/dev/null and the fifo get the dump (byte for byte), /dev/full is exit 1 `No space left on "
    "device`; the link, the folder and closed stdout are exit 1 in one sentence; no device, "
    "pipe or link is ever replaced by a file",
)
def test_restore_output_writes_into_a_device_or_pipe_and_never_replaces_one(tmp_path: Path):
    """--output naming a character device or a pipe gets the dump written into it, as
    `> PATH` would; a link to one, a folder or closed standard output is refused; the
    device, pipe or link is never replaced by a file (with --overwrite neither)."""
    root = tmp_path / "t"
    root.mkdir()
    argv = _restore(root)[:-2]  # restore local STORE latest
    env = tiffin_env(root / "home")
    expected = tiffin([*argv, "--output", "-"], env).stdout
    null_before = os.stat("/dev/null")
    for flags in ([], ["--overwrite"]):
        r = tiffin([*argv, "--output", "/dev/null", *flags], env)
        assert "written to /dev/null" in r.stdout
        assert os.stat("/dev/null").st_rdev == null_before.st_rdev
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
        r = tiffin([*argv, "--output", "/dev/full", *flags], env, expect=1)
        assert r.stderr.strip() == "tiffin: cannot write /dev/full: No space left on device"
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    fifo = root / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    tiffin([*argv, "--output", str(fifo), "--overwrite"], env)
    reader.join(timeout=60)
    assert got == [expected.encode()] and stat.S_ISFIFO(fifo.lstat().st_mode)
    link = root / "to-null"
    link.symlink_to("/dev/null")
    (root / "folder").mkdir()
    for path in (link, root / "folder"):
        r = tiffin([*argv, "--output", str(path), "--overwrite"], env, expect=1)
        [line] = r.stderr.strip().split("\n")
        assert line.startswith(f"tiffin: {path} is a "), line
    assert os.readlink(link) == "/dev/null"
    closed = subprocess.run(
        [tiffin_exe(), *argv, "--output", "-"],
        env=env,
        stdout=None,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        close_fds=True,
        preexec_fn=lambda: os.close(1),
    )
    assert closed.returncode == 1
    assert closed.stderr.strip() == "tiffin: standard output is closed: give --output FILE"

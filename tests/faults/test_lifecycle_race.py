"""Two lifecycle commands at once, as two real processes: `verify --all` and a `prune` that
removes, whole, a backup verify has listed but not yet read.

The race is made to happen, not hoped for: the newest backup is large (a sparse file of
zeros, verified first), and the test stops the verify process with SIGSTOP while that
backup's file is open (seen in /proc: the verify's own descriptors for a folder, the FTP
server's for FTP), then runs the prune to its end, then lets the verify go on."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.helpers import tiffin, tiffin_exe
from tests.faults.tried import tried
from tests.servers.env import tiffin_env
from tiffin.catalog.manifest import Manifest
from tiffin.catalog.naming import make_name

BIG = 768 << 20  # long enough to be caught while it is read


def store(folder: Path, when: datetime, size: int) -> str:
    """Store a complete, uncompressed 'data' backup of SIZE zero bytes (sparse) in FOLDER."""
    folder.mkdir(parents=True, exist_ok=True)
    name = make_name("race", "data", when, "none", False)
    with open(folder / name, "wb") as f:
        f.truncate(size)
    sha = hashlib.sha256()
    block = bytes(1 << 20)
    for _ in range(size >> 20):
        sha.update(block)
    sha.update(bytes(size & ((1 << 20) - 1)))
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    m = Manifest(name, "data", "race", stamp, stamp, size, sha.hexdigest(), "none")
    (folder / (name + ".manifest.json")).write_bytes(m.to_json())
    return name


def has_open(pid: int, path: Path) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == os.path.realpath(path):
                return True
        except OSError:
            continue
    return False


@tried(
    "fault",
    "A backup pruned whole while `verify --all` runs",
    "two processes: `tiffin verify --all` is stopped (SIGSTOP) while it reads the newest "
    "backup, after it listed the target and read the manifests; `tiffin prune --keep-last 1` "
    "then removes the older backup to its end; the verify is let go on (SIGCONT)",
    "verify says `REMOVED NAME: it was removed while being verified`, never FAILED; the newest "
    "is OK; the summary counts 1 removed; exit 0. Races made: 1 per target (caught on the first "
    "try, up to 5); removed backups reported FAILED: 0",
)
@pytest.mark.parametrize("kind", ["local", "ftp"])
def test_a_backup_pruned_while_verify_runs_is_reported_removed(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = tiffin_env(tmp_path / "home")
    if kind == "local":
        folder = tmp_path / "b"
        target = ["local", str(folder)]
    else:
        srv = request.getfixturevalue("ftp_server")
        sub = f"race-{os.getpid()}-{time.monotonic_ns()}"
        folder = srv.root / sub
        target = ["ftp", f"{srv.user}:{srv.password}@{srv.host}:{srv.port}", sub]
    old = store(folder, datetime(2026, 1, 1, 3, 0, tzinfo=UTC), 4096)
    new = store(folder, datetime(2026, 1, 2, 3, 0, tzinfo=UTC), BIG)
    for _ in range(5):  # caught after the big file was read whole: try again
        verify = subprocess.Popen(
            [tiffin_exe(), "verify", *target, "--all"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        reader = verify.pid if kind == "local" else srv.pid
        deadline = time.monotonic() + 60
        while not has_open(reader, folder / new) and verify.poll() is None:
            assert time.monotonic() < deadline, "verify never opened the big backup"
        os.kill(verify.pid, signal.SIGSTOP)
        caught = has_open(reader, folder / new)
        if caught:
            r = tiffin(["prune", *target, "--keep-last", "1"], env)
            assert "Deleted 1 and kept 1 backups." in r.stdout, r.stdout
            assert not (folder / old).exists()
        os.kill(verify.pid, signal.SIGCONT)
        out, err = verify.communicate(timeout=120)
        if caught:
            break
    else:
        pytest.fail("verify was never caught reading the big backup")
    assert verify.returncode == 0, (out, err)
    assert f"REMOVED {old}: it was removed while being verified" in out, out
    assert f"OK {new} ({BIG} bytes" in out, out
    assert "Verified 2 backups: 1 OK, 0 FAILED, 0 incomplete, 1 removed while being " in out
    assert "FAILED" not in out.replace("0 FAILED", "") and "Traceback" not in err, (out, err)

"""PostgreSQL's rules for archive_command and restore_command, held by `tiffin wal-push` and
`tiffin wal-fetch` on every target kind, each on its real server (SPEC §6, issue 14):
exit 0 only once stored and checked; the same bytes twice is success; other bytes under an
archived name is exit 1 and never an overwrite; .history, .backup and .partial files are
archived too; a missing file is a non-zero exit at once; a damaged one is never restored."""

from __future__ import annotations

import io
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conformance.kinds import Setup
from tests.e2e.helpers import tiffin_exe
from tiffin import targets
from tiffin.engine import archive

LABEL = "conformance"
SEGMENT = "000000010000000000000007"


def _run(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `tiffin ARGS[0] URL [options] ARGS[1:]` as PostgreSQL would, credentials from the
    environment and options (never in argv)."""
    url, opts = setup.url, setup.options
    env = dict(os.environ)
    if url.password:
        env["TIFFIN_FTP_PASSWORD"] = url.password
    flags = ["--label", LABEL, "--timeout", str(opts.timeout)]
    if opts.ssh_key:
        flags += ["--ssh-key", opts.ssh_key]
    if opts.endpoint_url:
        flags += ["--endpoint-url", opts.endpoint_url]
    proc = subprocess.run(
        [tiffin_exe(), args[0], url.redacted(), *flags, *args[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _wal(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "pg_wal" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "name",
    [SEGMENT, "00000002.history", f"{SEGMENT}.00000028.backup", f"{SEGMENT}.partial"],
)
def test_wal_push_then_fetch_round_trips_every_kind_of_wal_file(
    setup: Setup, tmp_path: Path, name: str
) -> None:
    data = os.urandom(300_000) * 4 + b"end"
    wal = _wal(tmp_path, name, data)
    pushed = _run(setup, "wal-push", str(wal))
    assert pushed.returncode == 0, pushed.stderr
    dest = tmp_path / "restored" / "RECOVERYXLOG"
    dest.parent.mkdir()
    fetched = _run(setup, "wal-fetch", name, str(dest))
    assert fetched.returncode == 0, fetched.stderr
    assert dest.read_bytes() == data


def test_pushing_the_same_bytes_again_is_success(setup: Setup, tmp_path: Path) -> None:
    wal = _wal(tmp_path, SEGMENT, os.urandom(50_000))
    assert _run(setup, "wal-push", str(wal)).returncode == 0
    again = _run(setup, "wal-push", str(wal))
    assert again.returncode == 0, again.stderr


def test_other_bytes_under_an_archived_name_are_exit_1_and_never_stored(
    setup: Setup, tmp_path: Path
) -> None:
    first = os.urandom(50_000)
    wal = _wal(tmp_path, SEGMENT, first)
    assert _run(setup, "wal-push", str(wal)).returncode == 0
    wal.write_bytes(os.urandom(50_000))
    other = _run(setup, "wal-push", str(wal))
    assert other.returncode == 1
    assert f"Archiving {SEGMENT} FAILED" in other.stderr and "never overwritten" in other.stderr
    dest = tmp_path / "RECOVERYXLOG"
    assert _run(setup, "wal-fetch", SEGMENT, str(dest)).returncode == 0
    assert dest.read_bytes() == first


def test_fetching_a_file_not_archived_fails_at_once(setup: Setup, tmp_path: Path) -> None:
    dest = tmp_path / "RECOVERYXLOG"
    started = time.monotonic()
    missing = _run(setup, "wal-fetch", SEGMENT, str(dest))
    assert time.monotonic() - started < 10
    assert missing.returncode == 1
    assert f"{SEGMENT} is not in the archive" in missing.stderr
    assert not dest.exists()


def test_a_damaged_archived_file_is_never_restored(setup: Setup, tmp_path: Path) -> None:
    wal = _wal(tmp_path, SEGMENT, os.urandom(50_000))
    assert _run(setup, "wal-push", str(wal)).returncode == 0
    where = archive.folder(setup.url, LABEL)
    with targets.connected(where, setup.options) as target:
        obj = archive.stored_name(SEGMENT)
        good = target.open(obj).read()
        target.remove(obj)
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 0xFF
        target.put(obj, io.BytesIO(bytes(bad)))
    dest = tmp_path / "RECOVERYXLOG"
    damaged = _run(setup, "wal-fetch", SEGMENT, str(dest))
    assert damaged.returncode == 1 and "damaged" in damaged.stderr
    assert not dest.exists() and list(tmp_path.glob("RECOVERYXLOG*")) == []

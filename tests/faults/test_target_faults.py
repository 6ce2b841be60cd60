"""Faults of the target, mid-upload: its server stopped, its disk full, its server hung."""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import tiffin
from tests.faults.conftest import BIG_DB
from tests.faults.midstream import LABEL, assert_failed, backup_args, running
from tests.faults.places import REMOTE_KINDS, Place, tmpfs
from tests.faults.tried import tried
from tests.servers.env import tiffin_env
from tests.servers.ftp import FTPServer
from tests.servers.mariadb import MariaDB
from tests.servers.sshd import SSHServer

HANG_TIMEOUT = 2  # --timeout of the hang tests, in seconds
# How long a hung server may hold tiffin: one --timeout for FTP and SSH; S3's requests are
# tried three times (botocore's standard retries). Cleaning up waits no more: a leftover on a
# hung server stays, listed as incomplete, for prune.
HANG_BOUND = 3 * HANG_TIMEOUT + 6

# What each kind says of a server that went away or hangs (one sentence, naming it).
GONE = {
    "ftp": "the connection to the FTP server at 127.0.0.1:",
    "ftps": "the connection to the FTP server at 127.0.0.1:",
    "sftp": "the connection to the SSH server at 127.0.0.1:",
    "s3": "127.0.0.1:",
    "s3multi": "127.0.0.1:",
}


def mysql_args(mariadb: MariaDB, place: Place, *options: str) -> list[str]:
    return backup_args(
        "mysql", place, *mariadb.conn_args(), "--database", BIG_DB, "--compress", "none", *options
    )


@tried(
    "fault",
    "The target server is stopped mid-upload",
    "the mysql dump is frozen with the upload under way; the FTP, SSH or S3 server is stopped "
    "(SIGTERM), the dump thawed; the server is started again",
    "exit 1, `Backup NAME FAILED:` naming the server; nothing under the final name, no "
    "manifest; the `.partial` the dead server kept is listed as incomplete (S3: moto keeps "
    "nothing across a restart)",
)
@pytest.mark.parametrize("place", REMOTE_KINDS, indirect=True)
def test_target_server_stopped_mid_upload(big_mysql: MariaDB, place: Place) -> None:
    assert place.server is not None
    env = {**place.env, **big_mysql.client_env()}
    try:
        with running(mysql_args(big_mysql, place), env) as run:
            run.freeze_midstream(place)
            place.server.stop()
            run.finish()
    finally:
        place.server.start()
    assert_failed(run, GONE[place.kind])
    if place.s3 is None:
        place.assert_nothing_published()


@pytest.fixture
def full_ftp(tmp_path: Path) -> Iterator[Place]:
    """An FTP server whose root is a 2 MiB tmpfs."""
    with tmpfs("2m") as root, FTPServer(root_dir=root) as srv:
        where = f"{srv.user}:{srv.password}@{srv.host}:{srv.port}"
        env = tiffin_env(tmp_path / "home")
        yield Place("ftp", ["ftp", where, "b"], f"ftp://{where}/~/b", env, srv, root / "b")


@pytest.fixture
def full_sftp(sshd: SSHServer, tmp_path: Path) -> Iterator[Place]:
    """A folder of the SSH login on a 2 MiB tmpfs (an absolute PATH)."""
    uid = pwd.getpwnam(sshd.user).pw_uid
    with tmpfs("2m", uid) as root:
        home = tmp_path / "home"
        env = tiffin_env(home)
        (home / ".ssh").mkdir(parents=True)
        sshd.write_known_hosts(home / ".ssh" / "known_hosts")
        key = home / ".ssh" / "id_ed25519"
        key.write_bytes(sshd.client_key.read_bytes())
        key.chmod(0o600)
        where = f"{sshd.user}@{sshd.host}:{sshd.port}"
        yield Place(
            "sftp", ["ssh", where, f"{root}/b"], f"sftp://{where}{root}/b", env, sshd, root / "b"
        )


@pytest.fixture
def full_local() -> Iterator[Place]:
    with tmpfs("2m") as root:
        env = tiffin_env()
        yield Place("local", ["local", str(root / "b")], f"file://{root}/b", env, None, root / "b")


@tried(
    "fault",
    "The target's disk fills up",
    "the target folder lies on a 2 MiB tmpfs (the FTP server's root; an SSH login's folder; a "
    "local folder); a folder of 4 MiB of random bytes is backed up",
    "exit 1, `Backup NAME FAILED:` saying the disk is full (pyftpdlib answers `426 None`: "
    "tiffin says the server could not write, a full disk being the usual cause; SSH: asked with "
    "OpenSSH's statvfs); nothing left on the disk",
)
@pytest.mark.parametrize("kind", ["local", "ftp", "sftp"])
def test_target_disk_full(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    place: Place = request.getfixturevalue(f"full_{kind}")
    data = tmp_path / "data"
    data.mkdir()
    (data / "random.bin").write_bytes(os.urandom(4 << 20))
    args = ["backup", "data", *place.args, "--dir", str(data), "--compress", "none"]
    r = tiffin([*args, "--label", LABEL, "--timeout", "20"], place.env, expect=1)
    assert "Traceback" not in r.stderr
    [report] = [ln for ln in r.stderr.splitlines() if ln.startswith(f"Backup {LABEL}_")]
    assert " FAILED: " in report
    assert "disk" in report and "full" in report, report
    place.assert_clean()


@tried(
    "fault",
    "The target server hangs mid-upload",
    f"the mysql dump is frozen with the upload under way; the FTP, SSH or S3 server and its "
    f"children are frozen (SIGSTOP), the dump thawed; `--timeout {HANG_TIMEOUT}`",
    f"exit 1 within {HANG_BOUND} s (not hung forever), `Backup NAME FAILED:` saying the server "
    "gave no answer in time; nothing published; once the server is resumed, whatever it kept "
    "is listed as incomplete",
)
@pytest.mark.parametrize("place", REMOTE_KINDS, indirect=True)
def test_target_server_hangs_mid_upload(big_mysql: MariaDB, place: Place) -> None:
    assert place.server is not None
    env = {**place.env, **big_mysql.client_env()}
    args = [*mysql_args(big_mysql, place)]
    args[args.index("--timeout") + 1] = str(HANG_TIMEOUT)
    with running(args, env) as run:
        run.freeze_midstream(place)
        with place.server.paused():
            run.thaw()
            hung = time.monotonic()
            run.finish(timeout=HANG_BOUND + 30)
            held = time.monotonic() - hung
    report = assert_failed(run, GONE[place.kind])
    assert "in time" in report or "timed out" in report, report
    assert held < HANG_BOUND, f"tiffin gave up only after {held:.1f} s"
    place.assert_nothing_published()

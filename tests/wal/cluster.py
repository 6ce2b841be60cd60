"""A real PostgreSQL whose archive_command is `tiffin wal-push`, and what a test checks of it:
a backlog made on purpose, pg_stat_archiver, and an archive that holds every segment."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.helpers import tiffin_exe
from tests.servers.postgres import OS_USER, Postgres
from tests.servers.proc import SHARED_TMP
from tiffin.catalog import walnames
from tiffin.engine import archive
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets.local import LocalTarget

LABEL = "noodles"


@contextmanager
def postgres_dir(prefix: str) -> Iterator[Path]:
    """A folder under /tmp that the postgres OS user owns (pytest's tmp_path is 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=SHARED_TMP))
    user = pwd.getpwnam(OS_USER)
    os.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def give(path: Path, mode: int = 0o600) -> None:
    user = pwd.getpwnam(OS_USER)
    os.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(mode)


def push_command(target: str, gate: Path | None = None) -> str:
    """The archive_command a user writes (TARGET: HOW WHERE [PATH] and options). With GATE,
    it fails while GATE is absent: a backlog of .ready segments made on purpose."""
    cmd = f"{tiffin_exe()} wal-push {target} --label {LABEL} %p"
    return f"test -e {gate} && {cmd}" if gate else cmd


def archiving(command: str) -> dict[str, str]:
    return {"wal_level": "replica", "archive_mode": "on", "archive_command": command}


def write_segments(pg: Postgres, count: int) -> str:
    """Write COUNT segments' worth of rows, closing a segment after each; return the name of
    the last segment closed."""
    pg.sql("CREATE TABLE IF NOT EXISTS rows (id bigserial, body text)")
    last = ""
    for _ in range(count):
        pg.sql(
            "INSERT INTO rows (body) SELECT md5(g::text) || md5(random()::text) "
            "FROM generate_series(1, 60000) g"
        )
        last = pg.sql("SELECT pg_walfile_name(pg_switch_wal())")
    return last


def ready(pg: Postgres) -> list[str]:
    status = pg.datadir / "pg_wal" / "archive_status"
    return sorted(p.name[: -len(".ready")] for p in status.iterdir() if p.name.endswith(".ready"))


def archiver(pg: Postgres) -> dict[str, str]:
    cols = ("archived_count", "last_archived_wal", "failed_count", "last_failed_wal", "ok")
    row = pg.sql(
        "SELECT archived_count, coalesce(last_archived_wal, ''), failed_count, "
        "coalesce(last_failed_wal, ''), coalesce(last_failed_time < last_archived_time, "
        "last_failed_time IS NULL) FROM pg_stat_archiver"
    )
    return dict(zip(cols, row.split("|"), strict=True))


def wait_failures(pg: Postgres, at_least: int = 1, timeout: float = 60) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while int(archiver(pg)["failed_count"]) < at_least:
        assert time.monotonic() < deadline, f"no archive failure: {archiver(pg)}"
        time.sleep(0.1)
    return archiver(pg)


def wait_drained(pg: Postgres, last: str, timeout: float = 180) -> dict[str, str]:
    """Wake the archiver (a new segment) until LAST is archived, no .ready file is left and
    the last attempt succeeded; return pg_stat_archiver then."""
    deadline = time.monotonic() + timeout
    woken = 0.0
    while True:
        state = archiver(pg)
        if state["last_archived_wal"] >= last and not ready(pg) and state["ok"] == "t":
            return state
        assert time.monotonic() < deadline, f"not drained: {state}, ready: {ready(pg)[:5]}"
        if time.monotonic() - woken > 5:  # after 3 failures the archiver sleeps up to 60 s
            pg.sql("SELECT pg_switch_wal()")
            pg.sql("SELECT pg_notify('x', '')")
            woken = time.monotonic()
        time.sleep(0.2)


def assert_complete(folder: Path, last: str) -> list[str]:
    """Assert that the archive in FOLDER (a local path: the target's own disk) holds every
    segment from the first to LAST, each reading back checked, and no leftover temp."""
    target = LocalTarget(
        archive.folder(TargetURL("local", path=str(folder)), LABEL), TargetOptions()
    )
    names = [a.name for a in archive.listing(target)]
    f = walnames.parse(last)
    assert f is not None
    wanted = walnames.chain(
        walnames.DEFAULT_SEG_SIZE,
        (f.segno() or 0) * walnames.DEFAULT_SEG_SIZE,
        walnames.first_timeline(),
    )
    missing = sorted(set(wanted) - set(names))
    assert not missing, f"the archive misses {missing[:5]}"
    for name in wanted:
        archive.fetch_to(target, name, lambda b: None)
    leftovers = [e.name for e in target.list() if e.partial]
    assert not leftovers, leftovers
    return names

"""A PostgreSQL that archives its WAL through `tiffin wal-push`, marker rows committed at
known times, and recovered copies of it started as the server a user would start."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from tests.e2e.helpers import tiffin_exe
from tests.servers.env import tiffin_env
from tests.servers.postgres import OS_USER, Postgres
from tests.servers.proc import SHARED_TMP

LABEL = "ramen"


def give_to_postgres(path: Path) -> None:
    user = pwd.getpwnam(OS_USER)
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, user.pw_uid, user.pw_gid)


def archiving(folder: Path, label: str = LABEL) -> dict[str, str]:
    """Return the server settings that archive every WAL file to FOLDER through tiffin, as
    the README tells a user to set them (the postgres OS user runs this worktree's tiffin)."""
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": f"{tiffin_exe()} wal-push local {folder} --label {label} %p",
    }


def switch_and_wait(pg: Postgres, timeout: float = 60) -> str:
    """Close the current WAL segment and wait until it is archived; return its name. The
    segment's own .done counts, not only the archiver's last file: a base backup's
    `.backup` file may be archived after the segment that follows it, and then stays last."""
    name = pg.sql("SELECT pg_walfile_name(pg_switch_wal())")
    deadline = time.monotonic() + timeout
    while True:
        done, failed, marked = pg.sql(
            "SELECT coalesce(last_archived_wal, ''), failed_count, "
            f"(pg_stat_file('pg_wal/archive_status/{name}.done', true)).size IS NOT NULL "
            "FROM pg_stat_archiver"
        ).split("|")
        if marked == "t" or (done >= name and done[:8] >= name[:8]):
            return name
        assert time.monotonic() < deadline, f"{name} was not archived ({failed} failures)"
        time.sleep(0.1)


def next_second() -> datetime:
    """Sleep until just past the next whole second; return that second (UTC)."""
    now = time.time()
    time.sleep(int(now) + 1.05 - now)
    return datetime.fromtimestamp(int(time.time()), UTC)


def mark(pg: Postgres, n: int) -> None:
    pg.sql(f"INSERT INTO markers VALUES ({n}, clock_timestamp())")


def markers(pg: Postgres) -> list[int]:
    return [int(x) for x in pg.sql("SELECT n FROM markers ORDER BY n").split()]


def shown(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def recovered(settings: dict[str, str] | None = None) -> Postgres:
    """A server (not started) whose data directory is absent: restore into its `datadir`,
    then start() it on a port and socket of its own."""
    return Postgres(settings=settings)


def wait_promoted(pg: Postgres, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while pg.sql("SELECT pg_is_in_recovery()") != "f":
        assert time.monotonic() < deadline, "the recovered server was not promoted"
        time.sleep(0.1)


def segment_of(tli: int, lsn: str) -> str:
    """The name of the 16 MiB WAL segment holding LSN on timeline TLI."""
    high, low = (int(x, 16) for x in lsn.split("/"))
    return f"{tli:08X}{high:08X}{low >> 24:08X}"


@contextlib.contextmanager
def archiving_server(home: Path) -> Iterator[tuple[Postgres, Path, dict[str, str]]]:
    """Yield a started server archiving its WAL through tiffin to a folder of its own
    (closed to no one: the postgres OS user writes there) with a markers table, that
    folder, and the environment tiffin runs in (HOME: HOME); remove everything after."""
    top = Path(tempfile.mkdtemp(prefix="tiffin-pitr-", dir=SHARED_TMP))
    top.chmod(0o755)
    folder = top / "backups"
    give_to_postgres(folder)
    pg = Postgres(settings=archiving(folder)).start()
    try:
        env = tiffin_env(home, **pg.client_env())
        pg.sql("CREATE TABLE markers (n int PRIMARY KEY, at timestamptz)")
        yield pg, folder, env
    finally:
        pg.close()
        shutil.rmtree(top, ignore_errors=True)

"""The database server itself frozen (SIGSTOP to the server the fixture started, and to every
process of it), at each phase: before tiffin connects, mid-dump, during restore's load and
during drill. Each run has --timeout 3 and must end within a generous bound: exit 1, one
line naming the server that stopped answering, nothing published, no child left running.
The server is thawed (SIGCONT) whatever happens."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import tiffin
from tests.faults.conftest import Source
from tests.faults.midstream import (
    LABEL,
    alive,
    assert_failed,
    backup_args,
    children_of,
    running,
    wait_for,
    written,
)
from tests.faults.places import Place
from tests.faults.tried import tried
from tests.servers.env import tiffin_env

SOURCES = ["mysql", "pgsql"]
SERVER = {"mysql": "the MySQL server at 127.0.0.1:", "pgsql": "the PostgreSQL server at 127.0.0.1:"}
CLIENTS = ("mariadb", "mariadb-dump", "mysql", "mysqldump", "psql", "pg_dump", "pg_dumpall")
BOUND = 60  # seconds: a run that takes longer hangs (--timeout is 3)
FROZEN = ["--timeout", "3"]


def clients_of(port: int) -> list[tuple[int, str]]:
    """Return (pid, argv[0]) of every database client still talking to the server at PORT
    (its port in the client's argv, or in its PGPORT)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not os.path.basename(argv[0].decode(errors="replace")).startswith(CLIENTS):
            continue
        talks = str(port).encode() in argv or f"PGPORT={port}".encode() in env
        if talks and alive(int(entry)):
            found.append((int(entry), argv[0].decode(errors="replace")))
    return found


def assert_one_line(err: str, prefix: str, what: str) -> None:
    """Assert ERR holds exactly one failure line starting with PREFIX, naming the server."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith(prefix)]
    assert len(lines) == 1, err
    assert SERVER[what] in lines[0] and "stopped answering" in lines[0], err


def finish_within_bound(run_started: float) -> None:
    assert time.monotonic() - run_started < BOUND, "the run did not end within its bound"


@tried(
    "fault",
    "The database server is frozen before tiffin connects",
    "the MariaDB / PostgreSQL server (and every process of it) is sent SIGSTOP, then `backup "
    "--timeout 3` runs (its prepare() queries and row counts are the first to wait); the "
    "server is thawed afterwards",
    "exit 1 within 60 s, one `Backup NAME FAILED: the MySQL|PostgreSQL server at HOST:PORT "
    "stopped answering: ...` line; nothing stored; no client left running",
)
@pytest.mark.parametrize("source", SOURCES, indirect=True)
@pytest.mark.parametrize("place", ["local"], indirect=True)
def test_server_frozen_before_connect(source: Source, place: Place) -> None:
    env = {**place.env, **source.env}
    args = [*backup_args(source.what, place, *source.args, "--compress", "none"), *FROZEN]
    with source.server.paused(), running(args, env) as run:
        run.finish(timeout=BOUND)
    report = assert_failed(run)
    assert_one_line(run.err, f"Backup {LABEL}_", source.what)
    assert "FAILED" in report
    place.assert_clean()
    assert clients_of(source.server.port) == []  # type: ignore[union-attr]
    finish_within_bound(run.started)


@tried(
    "fault",
    "The database server is frozen mid-dump",
    "the dump tool is held (SIGSTOP) once it has written 4 MB, the server and every process "
    "of it are sent SIGSTOP, the tool is let go; `backup --timeout 3` (a local folder and "
    "FTP); the server is thawed afterwards",
    "exit 1 within 60 s, one `Backup NAME FAILED: the MySQL|PostgreSQL server at HOST:PORT "
    "stopped answering: mariadb-dump|pg_dump made no progress for 3 seconds and was "
    "stopped` line; the dump tool is gone; nothing published, no `.partial`",
)
@pytest.mark.parametrize("source", SOURCES, indirect=True)
@pytest.mark.parametrize("place", ["local", "ftp"], indirect=True)
def test_server_frozen_mid_dump(source: Source, place: Place) -> None:
    env = {**place.env, **source.env}
    args = [*backup_args(source.what, place, *source.args, "--compress", "none"), *FROZEN]
    with running(args, env) as run:
        tool = run.freeze_midstream(place)
        with source.server.paused():
            run.thaw()
            run.finish(timeout=BOUND)
    assert_failed(run, "made no progress for 3 seconds")
    assert_one_line(run.err, f"Backup {LABEL}_", source.what)
    assert not alive(tool)
    place.assert_clean()
    assert clients_of(source.server.port) == []  # type: ignore[union-attr]
    finish_within_bound(run.started)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("frozen-stored")


def _backup_of(source: Source, folder: Path) -> str:
    """Back up the big database to FOLDER once per source; return the backup's name."""
    mine = folder / source.what
    names = [p.name for p in mine.glob(f"{source.what}_*.sql")] if mine.exists() else []
    if not names:
        tiffin(
            [
                "backup",
                source.what,
                "local",
                str(mine),
                "--label",
                source.what,
                *source.args,
                "--compress",
                "none",
            ],
            {**source.env, **_env()},
            timeout=300,
        )
        names = [p.name for p in mine.glob(f"{source.what}_*.sql")]
    assert len(names) == 1, names
    return names[0]


def _env() -> dict[str, str]:
    return tiffin_env()


def _loading(run_pid: int, what: str) -> bool:
    """Whether the client that loads the dump is connected and has read 4 MB of it."""
    mark = "--binary-mode" if what == "mysql" else "--single-transaction"
    for pid, _ in children_of(run_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if mark in argv and written(pid, "rchar") >= 4 << 20:
            return True
    return False


@tried(
    "fault",
    "The database server is frozen during `restore --into`",
    "a 60 MB dump is restored `--into mysql|pgsql --database NEW --timeout 3`; once the "
    "client that loads it has read 4 MB, the server and every process of it are sent SIGSTOP; "
    "the server is thawed afterwards",
    "exit 1 within 60 s, one `tiffin: the MySQL|PostgreSQL server at HOST:PORT stopped "
    "answering: mysql|psql made no progress for 3 seconds and was stopped` line; no client "
    "left running",
)
@pytest.mark.parametrize("source", SOURCES, indirect=True)
def test_server_frozen_during_restore(source: Source, stored: Path) -> None:
    name = _backup_of(source, stored)
    fresh = f"frozen_{int(time.time() * 1000) % 10**9}"
    args = [
        "restore",
        "local",
        str(stored / source.what),
        name,
        "--into",
        source.what,
        *source.server.conn_args(),
        "--database",
        fresh,
        *FROZEN,
    ]
    with running(args, {**_env(), **source.env}) as run:
        wait_for(lambda: _loading(run.proc.pid, source.what), "the load to be under way", 60)
        with source.server.paused():
            run.finish(timeout=BOUND)
    assert run.proc.returncode == 1, run.err
    assert_one_line(run.err, "tiffin: ", source.what)
    assert "made no progress for 3 seconds" in run.err, run.err
    assert clients_of(source.server.port) == []  # type: ignore[union-attr]
    finish_within_bound(run.started)


@tried(
    "fault",
    "The live database server is frozen while a drill runs",
    "the server the backup came from and every process of it are sent SIGSTOP, then `drill "
    "NAME --into mysql|pgsql --timeout 3` runs with that server's connection options; the "
    "server is thawed afterwards",
    "the drill passes (exit 0) within 60 s: it loads into a throwaway server of its own and "
    "never waits on, nor contacts, the live one; no client of the live server is started",
)
@pytest.mark.parametrize("source", SOURCES, indirect=True)
def test_a_drill_never_waits_on_the_live_server(source: Source, stored: Path) -> None:
    name = _backup_of(source, stored)
    args = [
        "drill",
        "local",
        str(stored / source.what),
        name,
        "--into",
        source.what,
        *source.server.conn_args(),
        *FROZEN,
    ]
    with source.server.paused(), running(args, {**_env(), **source.env}) as run:
        run.finish(timeout=BOUND)
    assert run.proc.returncode == 0, run.err
    assert f"Drill of {name} passed" in run.out, run.out + run.err
    assert clients_of(source.server.port) == []  # type: ignore[union-attr]
    finish_within_bound(run.started)


LOCKED_DB = "faults_lockwait"
HOLD = 8  # seconds the lock is held: more than twice --timeout
HOLDER = {
    "mysql": f"LOCK TABLES t WRITE; SELECT SLEEP({HOLD}); UNLOCK TABLES;",
    "pgsql": f"BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({HOLD}); COMMIT;",
}
WAITING = {
    "mysql": "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP%'",
    "pgsql": "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'",
}


@tried(
    "fault",
    "A dump waits for a lock longer than --timeout (the server answers)",
    f"a session holds a write lock on the only table (MariaDB `LOCK TABLES t WRITE`, "
    f"PostgreSQL `LOCK TABLE t IN ACCESS EXCLUSIVE MODE`) for {HOLD} s; `backup --timeout 2` "
    "of that database runs meanwhile",
    "the backup waits (its server answers a fresh `SELECT 1` every 2 s) and completes, exit "
    "0, once the lock is released: no progress alone never stops a dump",
)
@pytest.mark.parametrize("source", SOURCES, indirect=True)
@pytest.mark.parametrize("place", ["local"], indirect=True)
def test_a_dump_waiting_for_a_lock_is_not_stopped(source: Source, place: Place) -> None:
    server = source.server
    if source.what == "mysql":
        server.sql(f"CREATE DATABASE IF NOT EXISTS {LOCKED_DB}")
        server.sql("CREATE TABLE IF NOT EXISTS t (i INT) ENGINE=InnoDB", LOCKED_DB)
    else:
        if server.sql(f"SELECT count(*) FROM pg_database WHERE datname = '{LOCKED_DB}'") == "0":
            server.sql(f'CREATE DATABASE "{LOCKED_DB}"')
        server.sql("CREATE TABLE IF NOT EXISTS t (i int)", LOCKED_DB)
    holder = threading.Thread(target=server.sql, args=(HOLDER[source.what], LOCKED_DB))
    holder.start()
    try:
        wait_for(lambda: server.sql(WAITING[source.what]) == "1", "the lock to be held")
        args = [*source.server.conn_args(), "--database", LOCKED_DB, "--timeout", "2"]
        r = tiffin(backup_args(source.what, place, *args), {**place.env, **source.env})
        assert not holder.is_alive(), "the backup ended before the lock was released"
        assert " completed." in r.stdout, r.stdout
    finally:
        holder.join()
    [item] = place.listing()
    assert item["complete"], item

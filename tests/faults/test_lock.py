"""Two runs of the same job at once: the second refuses, naming the first; they never
interleave. The lock is per label, source kind, source and target, and dies with its
holder: runs of other sources never block each other."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.e2e.helpers import tiffin
from tests.faults.conftest import BIG_DB
from tests.faults.midstream import LABEL, alive, backup_args, running, wait_for
from tests.faults.places import Place
from tests.faults.tried import tried
from tests.servers.mariadb import MariaDB

SMALL_DB = "faults_small"


@tried(
    "fault",
    "Two runs of the same job at once; runs of other sources alongside",
    "a mysql backup is frozen mid-stream; the same job (same label, source, kind and target) "
    "is started; then a backup of another database of the same server, and a `data` backup, "
    "of the same label to the same target; then the first run is killed (SIGKILL) and the "
    "job started again",
    "the second run exits 1 at once, `Backup NAME FAILED: another tiffin run is backing up "
    "LABEL (mysql) to TARGET (pid N) from the same source` with the first run's pid, and "
    "stores nothing; the other database's and the `data` backups run alongside (exit 0); "
    "after the SIGKILL the lock is free and the job runs (exit 0)",
)
@pytest.mark.parametrize("place", ["local", "ftp"], indirect=True)
def test_a_second_run_of_the_same_job_refuses_and_names_the_first(
    big_mysql: MariaDB, place: Place, tmp_path: Path
) -> None:
    big_mysql.sql(
        f"CREATE DATABASE IF NOT EXISTS {SMALL_DB};"
        f"CREATE TABLE IF NOT EXISTS {SMALL_DB}.t (i INT); INSERT INTO {SMALL_DB}.t VALUES (1);"
    )
    env = {**place.env, **big_mysql.client_env()}
    small = backup_args("mysql", place, *big_mysql.conn_args(), "--database", SMALL_DB)
    same = backup_args("mysql", place, *big_mysql.conn_args(), "--database", BIG_DB)
    first = [*big_mysql.conn_args(), "--database", BIG_DB, "--compress", "none"]
    with running(backup_args("mysql", place, *first), env) as run:
        tool = run.freeze_midstream(place)
        stored = run.settle(place)
        r = tiffin(same, env, expect=1)
        assert place.stored() == stored, "the refused run stored something"
        assert r.stderr.startswith(f"Backup {LABEL}_") and " FAILED: " in r.stderr, r.stderr
        assert f"another tiffin run is backing up {LABEL} (mysql) to " in r.stderr, r.stderr
        assert f"(pid {run.proc.pid}) from the same source" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        tiffin(small, env)  # another source (database) of the same kind runs alongside
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "f").write_text("another kind of backup may run alongside\n")
        data = ["backup", "data", *place.args, "--label", LABEL, "--dir", str(tmp_path / "data")]
        tiffin(data, env)
        run.proc.kill()
        run.finish()
    wait_for(lambda: not alive(tool), "the orphaned dump tool to die")
    tiffin([*same, "--compress", "none"], env)
    locks = Path(env["HOME"], ".cache", "tiffin", "locks")
    for lock in locks.iterdir():  # one per job and per name claimed; a free one is empty
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600 and lock.read_text() == ""
    names = sorted(i["name"] for i in place.listing() if i["complete"])
    assert len(names) == 3, names
    assert sorted(n.split(".", 1)[1] for n in names) == ["data.tar.gz", "sql", "sql.gz"], names

"""Point-in-time recovery end to end, with a real PostgreSQL archiving through tiffin:
marker rows committed at T1 < T2 < T3, restored to a time between T2 and T3 and to the end;
a promote to timeline 2 whose archive a second recovery follows; the refusals made before
anything is written; pg_verifybackup on a restored copy."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.helpers import tiffin
from tests.pitr import cluster
from tests.pitr.cluster import LABEL, mark, markers, shown, switch_and_wait
from tests.servers.env import tiffin_env
from tests.servers.postgres import Postgres
from tests.servers.proc import SHARED_TMP


@dataclass
class History:
    """The archived server, where its backups and WAL went, and the times between markers."""

    pg: Postgres
    folder: Path
    env: dict[str, str]
    before_base: datetime
    between_2_and_3: datetime
    lsn_after_2: str


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    # The postgres OS user archives there: pytest's folders (0700, root's) are closed to it.
    top = Path(tempfile.mkdtemp(prefix="tiffin-pitr-", dir=SHARED_TMP))
    top.chmod(0o755)
    folder = top / "backups"
    cluster.give_to_postgres(folder)
    pg = Postgres(settings=cluster.archiving(folder)).start()
    try:
        env = tiffin_env(Path(tmp_path_factory.mktemp("home")), **pg.client_env())
        pg.sql("CREATE TABLE markers (n int PRIMARY KEY, at timestamptz)")
        before = cluster.next_second()
        cluster.next_second()
        args = ["backup", "pgsql", "local", str(folder), *pg.conn_args(), "--physical"]
        tiffin([*args, "--label", LABEL, "--compress", "zstd"], env)
        mark(pg, 1)
        switch_and_wait(pg)
        cluster.next_second()
        mark(pg, 2)
        lsn = pg.sql("SELECT pg_current_wal_insert_lsn()")
        between = cluster.next_second()
        cluster.next_second()
        mark(pg, 3)
        switch_and_wait(pg)
        yield History(pg, folder, env, before, between, lsn)
    finally:
        pg.close()
        shutil.rmtree(top, ignore_errors=True)


def restore(h: History, datadir: Path, *options: str, expect: int = 0) -> str:
    args = ["restore", "local", str(h.folder), "latest", "--into", "pgdata", "--dir", str(datadir)]
    r = tiffin([*args, *options], h.env, expect=expect)
    return r.stdout + r.stderr


def test_recovery_to_a_time_brings_back_what_committed_by_then(history: History) -> None:
    copy = cluster.recovered()
    try:
        out = restore(history, copy.datadir, "--to-time", shown(history.between_2_and_3))
        assert "Start the server with: runuser -u postgres -- " in out
        assert (copy.datadir / "recovery.signal").exists()
        assert oct(copy.datadir.stat().st_mode & 0o777) == "0o700"
        assert copy.datadir.owner() == "postgres"
        copy.start()
        cluster.wait_promoted(copy)
        assert markers(copy) == [1, 2]
    finally:
        copy.close()


def test_recovery_to_the_end_brings_back_everything(history: History) -> None:
    copy = cluster.recovered()
    try:
        restore(history, copy.datadir)
        copy.start()
        cluster.wait_promoted(copy)
        assert markers(copy) == [1, 2, 3]
    finally:
        copy.close()


def test_recovery_to_an_lsn_stops_there(history: History) -> None:
    copy = cluster.recovered()
    try:
        out = restore(history, copy.datadir, "--to-lsn", history.lsn_after_2)
        assert f"recovers to {history.lsn_after_2}, then promotes" in out
        copy.start()
        cluster.wait_promoted(copy)
        assert markers(copy) == [1, 2]
    finally:
        copy.close()


def test_owner_gets_the_data_directory_and_damage_leaves_nothing(
    history: History, tmp_path: Path
) -> None:
    datadir = tmp_path / "mine"
    out = restore(history, datadir, "--owner", "nobody")
    assert "runuser -u nobody -- " in out
    assert datadir.owner() == "nobody" and (datadir / "PG_VERSION").owner() == "nobody"
    assert oct(datadir.stat().st_mode & 0o777) == "0o700"
    [name] = [p for p in history.folder.iterdir() if p.name.endswith(".pgbase.tar.zst")]
    kept = tmp_path / "kept"
    shutil.copy2(name, kept)
    data = bytearray(name.read_bytes())
    data[len(data) // 2] ^= 0xFF
    name.write_bytes(bytes(data))
    try:
        out = restore(history, tmp_path / "never", expect=1)
        assert "does not match its manifest" in out, out
        assert not (tmp_path / "never").exists()
    finally:
        shutil.copy2(kept, name)
    out = restore(history, tmp_path / "x", "--owner", "no-such-user-here", expect=1)
    assert "no OS user 'no-such-user-here'" in out and not (tmp_path / "x").exists()


def test_pg_verifybackup_checks_a_restored_copy(history: History, tmp_path: Path) -> None:
    datadir = tmp_path / "copy"
    restore(history, datadir)
    verify = Path(history.pg.bin("pg_verifybackup"))
    r = subprocess.run([str(verify), str(datadir)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "backup successfully verified" in r.stdout


def test_refusals_come_before_anything_is_written(history: History, tmp_path: Path) -> None:
    datadir = tmp_path / "never"
    out = restore(history, datadir, "--to-time", shown(history.before_base), expect=1)
    assert "before the first base backup, which finished at" in out
    future = datetime.now().astimezone() + timedelta(days=1)
    out = restore(history, datadir, "--to-time", shown(future), expect=1)
    assert "after the archive's end" in out
    assert not datadir.exists()
    (datadir / "x").mkdir(parents=True)
    out = restore(history, datadir, expect=1)
    assert "is not empty" in out


def test_a_gap_in_the_archive_is_refused(history: History, tmp_path: Path) -> None:
    wal = history.folder / f"{LABEL}.wal"
    segments = sorted(p for p in wal.iterdir() if len(p.name) == 24 + 4)
    assert len(segments) >= 3, segments
    hidden = tmp_path / segments[-2].name
    shutil.move(segments[-2], hidden)
    try:
        datadir = tmp_path / "never"
        out = restore(history, datadir, expect=1)
        assert f"gap: {segments[-2].name[:24]} is missing" in out
        assert not datadir.exists()
    finally:
        shutil.move(hidden, segments[-2])


def test_a_promoted_copy_archives_timeline_2_and_a_second_recovery_follows_it(
    history: History,
) -> None:
    first = cluster.recovered(cluster.archiving(history.folder))
    second = cluster.recovered()
    try:
        restore(history, first.datadir)
        first.start()
        cluster.wait_promoted(first)
        assert first.sql("SELECT timeline_id FROM pg_control_checkpoint()") == "2"
        mark(first, 4)
        switch_and_wait(first)
        assert (history.folder / f"{LABEL}.wal" / "00000002.history.zst").exists()
        first.stop()
        restore(history, second.datadir)
        second.start()
        cluster.wait_promoted(second)
        assert markers(second) == [1, 2, 3, 4]
    finally:
        first.close()
        second.close()

"""A restore's speed work, with a real PostgreSQL archiving through tiffin: the data
directory is written durably (every file fsynced before "completed" is printed), a write
that fails midway reports nothing restored and leaves nothing, and once the first
restore_command call has started the fetch helper, the helper answers the calls after it
(walserve): a file in the archive lands at %p with its archived bytes, one that is not is
looked up afresh and refused in the same sentence as before; a caller of another OS user or
for another archive gets no answer and does its own work."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.helpers import tiffin
from tests.pitr import cluster
from tests.pitr.cluster import LABEL, mark, markers, switch_and_wait
from tests.servers.postgres import OS_USER, Postgres
from tiffin.commands.walask import FETCHED, SOCK, ask
from tiffin.commands.walspool import KEY


@dataclass
class Archived:
    pg: Postgres
    folder: Path
    env: dict[str, str]
    segment: str  # a segment the archive holds


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archived]:
    with cluster.archiving_server(Path(tmp_path_factory.mktemp("home"))) as (pg, folder, env):
        args = ["backup", "pgsql", "local", str(folder), *pg.conn_args(), "--physical"]
        tiffin([*args, "--label", LABEL, "--compress", "zstd"], env)
        mark(pg, 1)
        segment = switch_and_wait(pg)
        mark(pg, 2)
        switch_and_wait(pg)
        yield Archived(pg, folder, env, segment)


def restore(a: Archived, datadir: Path, expect: int = 0) -> str:
    args = ["restore", "local", str(a.folder), "latest", "--into", "pgdata", "--dir", str(datadir)]
    r = tiffin(args, a.env, expect=expect)
    return r.stdout + r.stderr


def ask_as(user: str, dest: Path, key: str, name: str, tail: str = "") -> tuple[bool, str] | None:
    """Call walask.ask in a process of USER, as the restore_command does; TAIL (written as a
    Python string literal, so that it may hold what argv cannot) ends the destination."""
    code = (
        "import json, sys\nfrom tiffin.commands.walask import ask\n"
        f"print(json.dumps(ask(sys.argv[1] + {tail!r}, sys.argv[2], sys.argv[3], 60)))"
    )
    r = subprocess.run(
        ["runuser", "-u", user, "--", sys.executable, "-c", code, str(dest), key, name],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    got = json.loads(r.stdout)
    return None if got is None else (got[0], got[1])


def test_after_the_first_call_the_fetch_helper_answers_every_restore_command_call(
    archived: Archived,
) -> None:
    copy = cluster.recovered()
    try:
        out = restore(archived, copy.datadir)
        assert "completed" in out
        copy.start()
        cluster.wait_promoted(copy)
        assert markers(copy) == [1, 2]
        spool = copy.datadir / "pg_wal" / FETCHED
        assert stat.S_ISSOCK((spool / SOCK).stat().st_mode), "no helper serves the spool"
        key = (spool / KEY).read_text()
        dest = copy.datadir / "pg_wal" / "ASKED"
        assert ask_as(OS_USER, dest, key, archived.segment) == (True, "")
        stored = archived.folder / f"{LABEL}.wal" / f"{archived.segment}.zst"
        plain = subprocess.run(["zstd", "-dcq", str(stored)], capture_output=True, check=True)
        assert dest.read_bytes() == plain.stdout and len(plain.stdout) == 16 << 20
        missing = "0000000A.history"
        assert ask_as(OS_USER, dest, key, missing) == (
            False,
            f"Restoring {missing} FAILED: {missing} is not in the archive",
        )
        assert ask_as(OS_USER, dest, key + "x", archived.segment) is None  # another archive
        assert ask(str(dest), key, archived.segment, 60) is None  # root: not the helper's user
        for tail in ("\0", "\u2028\0x"):  # what no path holds: refused, and the helper lives on
            assert ask_as(OS_USER, dest, key, archived.segment, tail) is None
        assert ask_as(OS_USER, dest, key, archived.segment) == (True, "")
    finally:
        copy.close()


def test_a_restore_that_fails_midway_reports_nothing_restored_and_leaves_nothing(
    archived: Archived, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    try:
        out = restore(archived, disk / "data", expect=1)
        assert "No space left on device" in out, out
        assert "completed" not in out and "Start the server" not in out
        assert len(out.strip().splitlines()) == 1, out
        assert not (disk / "data").exists()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)

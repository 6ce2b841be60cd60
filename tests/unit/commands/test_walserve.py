"""The fetch helper's socket, in a data directory of any depth: a spool whose socket path is
longer than AF_UNIX holds (107 bytes) is still served, through /proc/self/fd of its folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tiffin.catalog import walnames
from tiffin.commands import walahead, walask
from tiffin.commands.walahead import Targets
from tiffin.commands.walserve import Server
from tiffin.commands.walspool import FetchSpool
from tiffin.engine import archive
from tiffin.job import TargetOptions, TargetURL

SEG = "000000010000000000000003"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="w", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("depth", [0, 30])
def test_the_helper_serves_a_spool_at_any_depth(
    tmp_path: Path, short_dir: Path, depth: int
) -> None:
    data = os.urandom(1 << 16) * 4
    wal = tmp_path / "wal" / SEG
    wal.parent.mkdir()
    wal.write_bytes(data)
    conns = Targets(
        archive.folder(TargetURL("local", path=str(tmp_path / "store")), "h"), TargetOptions()
    )
    archive.push(conns.get(), str(wal))
    datadir = short_dir.joinpath(*["dé" + "x" * 20] * depth)  # multi-byte names count as bytes
    (datadir / "pg_wal").mkdir(parents=True)
    dest = datadir / "pg_wal" / "RECOVERYXLOG"
    spool = FetchSpool(str(dest), "the-key")
    assert spool.usable()
    server = Server(spool, conns, lambda name: None, lambda name: False)
    assert server.start()
    try:
        assert (len(os.fsencode(server.path)) > 107) == (depth > 0)
        assert walask.ask(str(dest), "the-key", SEG, 10) == (True, "")
        assert dest.read_bytes() == data
        missing = "0000000100000000000000FF"
        got = walask.ask(str(dest), "the-key", missing, 10)
        assert got == (False, f"Restoring {missing} FAILED: {missing} is not in the archive")
        assert walask.ask(str(dest), "another-key", SEG, 10) is None
    finally:
        server.close()
        conns.close()
    assert not os.path.exists(server.path)
    assert walask.ask(str(dest), "the-key", SEG, 10) is None  # nobody serves: the call works alone


def test_a_helper_left_idle_clears_what_it_fetched_ahead(
    tmp_path: Path, short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recovery stopped before the archive's end (a target time): the segments fetched past
    it would lie in pg_wal for ever; once PostgreSQL has taken nothing for IDLE seconds, the
    helper removes them and ends."""
    names = [f"0000000100000000000000{i:02X}" for i in (1, 2, 3)]
    conns = Targets(
        archive.folder(TargetURL("local", path=str(tmp_path / "store")), "h"), TargetOptions()
    )
    for name in names:
        wal = tmp_path / "wal" / name
        wal.parent.mkdir(exist_ok=True)
        wal.write_bytes(os.urandom(4096))
        archive.push(conns.get(), str(wal))
    (short_dir / "pg_wal").mkdir()
    spool = FetchSpool(str(short_dir / "pg_wal" / "RECOVERYXLOG"), "the-key")
    assert spool.usable()
    monkeypatch.setattr(walahead, "IDLE", 0.5)
    try:
        walahead.fetch_ahead(conns, spool, names[0], walnames.DEFAULT_SEG_SIZE, 2)
    finally:
        conns.close()
    assert [n for n in os.listdir(spool.dir) if n.isalnum() and len(n) == 24] == []
    assert not os.path.exists(os.path.join(spool.dir, walask.SOCK))


@pytest.mark.parametrize("folder", ["/tmp/a\0b", "/tmp/" + "x" * 120 + "\0b", "/tmp/\u2028" * 30])
def test_a_destination_no_helper_can_serve_is_no_answer_never_an_error(folder: str) -> None:
    """A NUL (short or long path), or a path of odd characters where no folder exists: the
    call does its own work, which says what is wrong."""
    assert walask.ask(folder + "/RECOVERYXLOG", "the-key", SEG, 5) is None

"""The spools beside pg_wal: a record answers only for the very file it was made for, in the
archive it was made for; a spool of another archive is emptied before use."""

from __future__ import annotations

import os
from pathlib import Path

from tiffin.commands import walspool
from tiffin.commands.wal import after

SEG = "000000010000000000000003"


def _wal(tmp_path: Path, name: str = SEG) -> Path:
    path = tmp_path / "pg_wal" / name
    (tmp_path / "pg_wal" / "archive_status").mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 100)
    return path


def test_a_record_answers_once_for_the_same_file_and_archive(tmp_path: Path) -> None:
    wal = _wal(tmp_path)
    spool = walspool.PushSpool(str(wal), "k1")
    spool.record(SEG, os.stat(wal))
    assert walspool.PushSpool(str(wal), "k2").take(SEG, os.stat(wal)) is False  # consumed
    spool.record(SEG, os.stat(wal))
    assert spool.take(SEG, os.stat(wal)) is True
    assert spool.take(SEG, os.stat(wal)) is False


def test_a_record_of_a_file_since_changed_answers_nothing(tmp_path: Path) -> None:
    wal = _wal(tmp_path)
    spool = walspool.PushSpool(str(wal), "k")
    before = os.stat(wal)
    spool.record(SEG, before)
    wal.write_bytes(b"y" * 101)
    assert spool.take(SEG, os.stat(wal)) is False
    before = os.stat(wal)
    wal.write_bytes(b"z" * 101)
    spool.record(SEG, before)  # changed while pushed: no record
    assert not (tmp_path / "pg_wal" / walspool.PUSHED / (SEG + ".ok")).exists()


def test_ready_files_come_history_first_then_by_name(tmp_path: Path) -> None:
    wal = _wal(tmp_path)
    status = tmp_path / "pg_wal" / "archive_status"
    for n in ["000000010000000000000005", "00000002.history", "000000010000000000000004", SEG]:
        (status / (n + ".ready")).touch()
    (status / "000000010000000000000002.done").touch()
    spool = walspool.PushSpool(str(wal), "k")
    assert spool.ready(SEG, 10) == [
        "00000002.history",
        "000000010000000000000004",
        "000000010000000000000005",
    ]
    assert spool.ready(SEG, 1) == ["00000002.history"]


def test_a_fetch_spool_of_another_archive_is_emptied(tmp_path: Path) -> None:
    dest = tmp_path / "pg_wal" / "RECOVERYXLOG"
    dest.parent.mkdir()
    spool = walspool.FetchSpool(str(dest), "a")
    assert spool.usable()
    Path(spool.path(SEG)).write_bytes(b"old")
    other = walspool.FetchSpool(str(dest), "b")
    assert other.take(SEG, str(dest)) is False and not dest.exists()
    assert other.usable() and not other.holds(SEG)  # the lock's holder empties it
    assert spool.usable() and not spool.holds(SEG)
    Path(spool.path(SEG)).write_bytes(b"new")
    assert spool.take(SEG, str(dest)) is True and dest.read_bytes() == b"new"
    assert spool.take("../../etc", str(dest)) is False


def test_segments_ahead_follow_the_timeline_across_a_log() -> None:
    assert after("0000000200000001000000FE", 3) == [
        "0000000200000001000000FF",
        "000000020000000200000000",
        "000000020000000200000001",
    ]
    assert after("00000002.history", 3) == []
    assert after("000000010000000000000001.partial", 3) == []


def test_one_process_at_a_time_holds_the_spool(tmp_path: Path) -> None:
    wal = _wal(tmp_path)
    spool = walspool.PushSpool(str(wal), "k")
    first = spool.lock()
    assert first is not None
    pid = os.fork()
    if pid == 0:  # another process: the lock is taken
        os._exit(0 if walspool.PushSpool(str(wal), "k").lock() is None else 1)
    assert os.waitpid(pid, 0)[1] == 0
    os.close(first)
    again = spool.lock()
    assert again is not None
    os.close(again)


def test_a_call_waits_for_the_helper_only_while_it_is_to_do_the_work(tmp_path: Path) -> None:
    wal = _wal(tmp_path)
    spool = walspool.PushSpool(str(wal), "k")
    held = spool.lock()
    assert held is not None
    assert walspool.settle(spool, lambda: False, lambda: False, 5) == (False, None)
    assert walspool.settle(spool, lambda: True, lambda: True, 5) == (True, None)
    done, lock = walspool.settle(spool, lambda: False, lambda: True, 0.05)
    assert (done, lock) == (False, None)  # waited out
    os.close(held)
    done, lock = walspool.settle(spool, lambda: False, lambda: True, 5)
    assert not done and lock is not None  # no helper: this call leads
    os.close(lock)

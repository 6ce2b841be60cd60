"""The WAL archive's objects on a local folder: a push reads back checked, the same bytes twice
are one success, other bytes are refused, and every damage is caught before a byte is trusted."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tiffin.engine import archive, walformat
from tiffin.errors import IntegrityError
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets.local import LocalTarget

SEG = "000000010000000000000003"


def _target(tmp_path: Path) -> LocalTarget:
    url = archive.folder(TargetURL("local", path=str(tmp_path / "store")), "host")
    return LocalTarget(url, TargetOptions())


def _wal(tmp_path: Path, name: str = SEG, data: bytes | None = None) -> Path:
    path = tmp_path / "pg_wal" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(os.urandom(1000) * 2000 if data is None else data)
    return path


def test_a_pushed_file_fetches_back_byte_for_byte(tmp_path: Path) -> None:
    target, wal = _target(tmp_path), _wal(tmp_path)
    pushed = archive.push(target, str(wal))
    assert not pushed.already and 0 < pushed.stored_size < wal.stat().st_size
    assert (tmp_path / "store" / "host.wal" / (SEG + ".zst")).is_file()
    dest = tmp_path / "RECOVERYXLOG"
    meta = archive.fetch(target, SEG, str(dest))
    assert dest.read_bytes() == wal.read_bytes() and meta.size == wal.stat().st_size
    assert archive.read_meta(target, SEG).pushed == meta.pushed
    assert [a.name for a in archive.listing(target)] == [SEG]


def test_plain_zstd_decompresses_an_archived_file(tmp_path: Path) -> None:
    target, wal = _target(tmp_path), _wal(tmp_path)
    archive.push(target, str(wal))
    stored = tmp_path / "store" / "host.wal" / (SEG + ".zst")
    out = subprocess.run(["zstd", "-dc", str(stored)], capture_output=True, check=True).stdout
    assert out == wal.read_bytes()


def test_the_same_bytes_twice_is_success_other_bytes_a_conflict(tmp_path: Path) -> None:
    target, wal = _target(tmp_path), _wal(tmp_path)
    archive.push(target, str(wal))
    assert archive.push(target, str(wal)).already
    wal.write_bytes(b"other" * 1000)
    with pytest.raises(archive.WalConflict, match="never overwritten"):
        archive.push(target, str(wal))


def test_a_temp_left_by_a_killed_push_does_not_block_the_next(tmp_path: Path) -> None:
    target, wal = _target(tmp_path), _wal(tmp_path, "00000002.history", b"1\t0/3000060\tx\n")
    folder = tmp_path / "store" / "host.wal"
    folder.mkdir(parents=True)
    (folder / "00000002.history.zst.partial").write_bytes(b"half")
    archive.push(target, str(wal))
    assert archive.listing(target)[0].name == "00000002.history"
    assert not (folder / "00000002.history.zst.partial").exists()


@pytest.mark.parametrize("cut", [1, 10, 30, 400, -200, -1, -40, -80])
def test_a_damaged_object_is_refused_and_nothing_is_written(tmp_path: Path, cut: int) -> None:
    target, wal = _target(tmp_path), _wal(tmp_path)
    archive.push(target, str(wal))
    stored = tmp_path / "store" / "host.wal" / (SEG + ".zst")
    data = bytearray(stored.read_bytes())
    data[cut] ^= 0x55
    stored.write_bytes(bytes(data))
    dest = tmp_path / "RECOVERYXLOG"
    with pytest.raises(IntegrityError):
        archive.fetch(target, SEG, str(dest))
    assert not dest.exists() and not (tmp_path / "RECOVERYXLOG.tiffin-tmp").exists()


def test_a_truncated_object_is_refused(tmp_path: Path) -> None:
    target, wal = _target(tmp_path), _wal(tmp_path)
    archive.push(target, str(wal))
    stored = tmp_path / "store" / "host.wal" / (SEG + ".zst")
    stored.write_bytes(stored.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match="ends early"):
        archive.fetch(target, SEG, str(tmp_path / "x"))


def test_a_missing_file_is_walmissing_and_other_names_are_refused(tmp_path: Path) -> None:
    target = _target(tmp_path)
    with pytest.raises(archive.WalMissing, match="not in the archive"):
        archive.fetch(target, SEG, str(tmp_path / "x"))
    with pytest.raises(IntegrityError, match="not the name of a WAL"):
        archive.fetch(target, "../etc/passwd", str(tmp_path / "x"))


SIZES = [0, 1, walformat.WHOLE - 1, walformat.WHOLE, walformat.WHOLE + 1, 2 * walformat.WHOLE + 5]


@pytest.mark.parametrize("size", SIZES)
def test_files_read_whole_or_streamed_come_back_byte_for_byte(tmp_path: Path, size: int) -> None:
    target = _target(tmp_path)
    data = (os.urandom(4096) * (size // 4096 + 1))[:size]
    wal = _wal(tmp_path, data=data)
    archive.push(target, str(wal))
    stored = tmp_path / "store" / "host.wal" / (SEG + ".zst")
    out = subprocess.run(["zstd", "-dc", str(stored)], capture_output=True, check=True).stdout
    assert out == data
    dest = tmp_path / "RECOVERYXLOG"
    assert archive.fetch(target, SEG, str(dest)).size == size and dest.read_bytes() == data


@pytest.mark.parametrize("size", [100, walformat.WHOLE, walformat.WHOLE + 100])
@pytest.mark.parametrize("change", [-1, 1])
def test_a_file_that_changed_size_while_read_is_never_stored(
    tmp_path: Path, size: int, change: int
) -> None:
    """The size taken when the push began no longer holds when the bytes are read: the stream
    refuses before its last bytes, so the target publishes nothing under the final name."""
    target, wal = _target(tmp_path), _wal(tmp_path, data=os.urandom(size + change))
    fd = os.open(wal, os.O_RDONLY)
    try:
        meta = walformat.Meta(SEG, size, 0.0)
        with pytest.raises(IntegrityError, match="changed while it was read"):
            target.put(SEG + ".zst", walformat.PushStream(fd, meta))
    finally:
        os.close(fd)
    assert target.stat(SEG + ".zst") is None


def test_pushes_from_many_threads_at_once_keep_their_own_bytes(tmp_path: Path) -> None:
    """The helper pushes from several threads, each reading whole segments into a buffer of
    its own."""
    target = _target(tmp_path)
    names = [f"0000000100000000000000{i:02X}" for i in range(1, 9)]
    files = {n: _wal(tmp_path, n, os.urandom(1 << 16) * 256) for n in names}
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: archive.push(target, str(files[n])), names))
    for name in names:
        dest = tmp_path / f"back-{name}"
        archive.fetch(target, name, str(dest))
        assert dest.read_bytes() == files[name].read_bytes()

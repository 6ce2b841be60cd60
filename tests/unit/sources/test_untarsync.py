"""Durable extraction: every file handed over is fsynced, a failure is named, and every
descriptor is closed whatever happens. The failing fsync is real: fsync(2) of a pipe fails
with EINVAL."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tiffin.errors import BackupFailed
from tiffin.sources.untar import SafeExtractor
from tiffin.sources.untarsync import DIRECT_MIN, PENDING, Syncer


@pytest.fixture(params=["tmp", "disk"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A folder on the suite's temp file system (a tmpfs under scripts/test.sh) and one on
    the disk (/var/tmp): only a disk file system holds O_DIRECT writes to its alignment."""
    if request.param == "tmp":
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="tiffin-direct-", dir="/var/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def test_every_file_handed_over_is_fsynced_and_closed(tmp_path: Path) -> None:
    syncer = Syncer()
    fds = []
    for i in range(PENDING * 3):  # more than may wait at once: sync() waits its turn
        fd = os.open(tmp_path / f"f{i}", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"x" * i)
        syncer.sync(fd, f"f{i}")
        fds.append(fd)
    syncer.finish()
    assert all(closed(fd) for fd in fds)


def test_a_failed_fsync_is_named_once_finished_and_closes_everything() -> None:
    syncer = Syncer()
    r, w = os.pipe()
    syncer.sync(r, "base/1/1259")
    with pytest.raises(BackupFailed, match=r"^restoring base/1/1259 failed: Invalid argument$"):
        syncer.finish()
    assert closed(r)
    os.close(w)


def test_after_a_failed_fsync_the_next_file_is_refused_and_closed() -> None:
    syncer = Syncer(threads=1)
    r, w = os.pipe()
    syncer.sync(r, "global/pg_control")
    syncer._stop()  # the worker has met the failure
    r2, w2 = os.pipe()
    with pytest.raises(BackupFailed, match="restoring global/pg_control failed"):
        syncer.sync(r2, "next")
    assert closed(r2)
    for fd in (w, w2):
        os.close(fd)


def test_abandon_closes_what_waits_without_syncing(tmp_path: Path) -> None:
    syncer = Syncer()
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    syncer.sync(fd, "f")
    syncer.abandon()
    assert closed(fd)


def tar_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_durable_extraction_restores_the_same_files(tmp_path: Path) -> None:
    files = {f"base/{i % 3}/{i}": os.urandom(i * 1000) for i in range(50)}
    files["global/pg_control"] = b"c" * 8192
    n = SafeExtractor(str(tmp_path / "d"), durable=True).extract(io.BytesIO(tar_of(files)))
    assert n == len(files)
    for name, data in files.items():
        assert (tmp_path / "d" / name).read_bytes() == data


def test_a_durable_extraction_refuses_what_any_extraction_refuses(tmp_path: Path) -> None:
    stream = io.BytesIO(tar_of({"ok": b"1", "../outside": b"2"}))
    with pytest.raises(BackupFailed, match="would be written outside"):
        SafeExtractor(str(tmp_path / "d"), durable=True).extract(stream)
    assert not (tmp_path / "outside").exists()


def test_files_of_many_blocks_come_back_whole_from_the_writer_threads(tmp_path: Path) -> None:
    page = 4096
    holey = os.urandom(5 * page + 7) + bytes(300 * page) + os.urandom(page) + bytes(2000 * page)
    files = {"base/5/16384": holey, "base/5/16385": os.urandom(3 * (1 << 20) + 11)}
    files["pg_wal/000000010000000000000001"] = bytes(1 << 24)
    n = SafeExtractor(str(tmp_path / "d"), durable=True).extract(io.BytesIO(tar_of(files)))
    assert n == 3
    for name, data in files.items():
        path = tmp_path / "d" / name
        assert path.stat().st_size == len(data) and path.read_bytes() == data
    wal = tmp_path / "d" / "pg_wal" / "000000010000000000000001"
    assert wal.stat().st_blocks * 512 < 1 << 20  # its zeros are a hole, as written before


def test_relation_sized_files_written_past_the_page_cache_come_back_whole(place: Path) -> None:
    page = 4096
    assert DIRECT_MIN <= 9 << 20
    relation = os.urandom(700 * page) + bytes(600 * page) + os.urandom(1004 * page)  # 9 MiB
    files = {"base/5/16397": relation, "base/5/16397_fsm": os.urandom(6 * page)}
    files["base/5/16398"] = os.urandom(9 << 20) + bytes(3 * page)  # zeros at its end
    n = SafeExtractor(str(place / "d"), durable=True).extract(io.BytesIO(tar_of(files)))
    assert n == 3
    for name, data in files.items():
        path = place / "d" / name
        assert path.stat().st_size == len(data) and path.read_bytes() == data


@pytest.mark.parametrize("size", [3 << 20, 12 << 20], ids=["cached", "direct"])
def test_a_stream_ending_inside_a_file_fails_and_leaves_no_descriptor(
    size: int, place: Path
) -> None:
    stream = tar_of({"big": os.urandom(size)})[: size - (1 << 20)]
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(BackupFailed, match="not a sound tar stream"):
        SafeExtractor(str(place / "d"), durable=True).extract(io.BytesIO(stream))
    assert len(os.listdir("/proc/self/fd")) == before
    assert not (place / "d" / "big").exists()

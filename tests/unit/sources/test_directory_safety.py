"""The data source's tar stream, and a restore that never writes outside DIR."""

from __future__ import annotations

import io
import os
import secrets
import stat
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiffin.errors import BackupFailed, UsageError
from tiffin.job import RestoreJob, SourceSpec, TargetURL
from tiffin.sources.directory import DirectoryLoader, DirectorySource, excluded

MiB = 1 << 20


def tar_names(stream: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        return tar.getnames()


def loader(dest: Path | str, overwrite: bool = False) -> DirectoryLoader:
    spec = SourceSpec("data", dir=str(dest))
    return DirectoryLoader(
        RestoreJob(TargetURL("local", path="/b"), "n", into="dir", source=spec, overwrite=overwrite)
    )


def member(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o755 if kind == tarfile.DIRTYPE else 0o644
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    info.size = len(data)
    return info, data


def archive(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, bytes]]:
    """Every path under ROOT but SKIP, with its mode and content (or link target)."""
    out: dict[str, tuple[int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if p == skip:
                continue
            st = p.lstat()
            body = (
                os.readlink(p).encode()
                if p.is_symlink()
                else p.read_bytes()
                if p.is_file()
                else b""
            )
            out[str(p)] = (st.st_mode, body)
    return out


@pytest.fixture
def arena(tmp_path: Path) -> tuple[Path, Path]:
    """DIR to restore into, and a sibling folder holding a victim file."""
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (outside / "victim").write_text("precious")
    return dest, outside


TOKEN = "tiffin-evil-" + secrets.token_hex(4)

HOSTILE = {
    "dotdot": lambda o: [member("../x", data=b"x")],
    "dotdot_inside_name": lambda o: [member("data/../../outside/victim", data=b"x")],
    "absolute": lambda o: [member(str(o / "victim"), data=b"x")],
    "symlink_abs_then_through": lambda o: [
        member("data", tarfile.DIRTYPE),
        member("data/l", tarfile.SYMTYPE, str(o)),
        member("data/l/victim", data=b"x"),
    ],
    "symlink_tmp_then_through": lambda o: [
        member("data/l", tarfile.SYMTYPE, "/tmp"),
        member(f"data/l/{TOKEN}", data=b"x"),
    ],
    "symlink_parent_then_through": lambda o: [
        member("data/up", tarfile.SYMTYPE, ".."),
        member("data/up/evil", data=b"x"),
    ],
    "symlink_grandparent_then_through": lambda o: [
        member("data/up", tarfile.SYMTYPE, "../.."),
        member("data/up/outside/victim", data=b"x"),
    ],
    "symlink_inside_then_through": lambda o: [
        member("data", tarfile.DIRTYPE),
        member("data/sub", tarfile.DIRTYPE),
        member("data/l", tarfile.SYMTYPE, "sub"),
        member("data/l/f", data=b"x"),
    ],
    "top_is_symlink": lambda o: [
        member("data", tarfile.SYMTYPE, str(o)),
        member("data/victim", data=b"x"),
    ],
    "char_device": lambda o: [member("data/null", tarfile.CHRTYPE)],
    "fifo": lambda o: [member("data/fifo", tarfile.FIFOTYPE)],
    "hardlink_etc_passwd": lambda o: [member("data/pw", tarfile.LNKTYPE, "/etc/passwd")],
    "hardlink_dotdot": lambda o: [member("data/pw", tarfile.LNKTYPE, "../outside/victim")],
    "hardlink_not_extracted": lambda o: [member("data/h", tarfile.LNKTYPE, "data/never")],
    "hardlink_to_symlink": lambda o: [
        member("data/l", tarfile.SYMTYPE, str(o / "victim")),
        member("data/h", tarfile.LNKTYPE, "data/l"),
    ],
    "file_then_through_file": lambda o: [
        member("data/f", data=b"x"),
        member("data/f/g", data=b"x"),
    ],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused_and_writes_nothing_outside(
    case: str, arena: tuple[Path, Path]
) -> None:
    dest, outside = arena
    root = dest.parent
    before = snapshot(root, dest)
    with pytest.raises(BackupFailed, match=r"^refusing "):
        loader(dest).load(io.BytesIO(archive(*HOSTILE[case](outside))), {})
    assert snapshot(root, dest) == before
    assert not os.path.lexists(f"/tmp/{TOKEN}")
    assert not (dest / "evil").exists()


def test_refusal_names_the_member_and_why(arena: tuple[Path, Path]) -> None:
    dest, _ = arena
    with pytest.raises(BackupFailed) as err:
        loader(dest).load(io.BytesIO(archive(member("../etc/passwd", data=b"x"))), {})
    assert str(err.value) == f"refusing ../etc/passwd: it would be written outside {dest}"


def test_existing_file_is_kept_unless_overwrite(arena: tuple[Path, Path]) -> None:
    dest, _ = arena
    (dest / "data").mkdir()
    (dest / "data" / "a").write_text("mine")
    tar = archive(member("data", tarfile.DIRTYPE), member("data/a", data=b"theirs"))
    with pytest.raises(BackupFailed, match="exists; add --overwrite"):
        loader(dest).load(io.BytesIO(tar), {})
    assert (dest / "data" / "a").read_text() == "mine"
    assert loader(dest, overwrite=True).load(io.BytesIO(tar), {}) == f"restored 1 file into {dest}"
    assert (dest / "data" / "a").read_text() == "theirs"


def test_overwrite_replaces_a_planted_symlink_instead_of_writing_through_it(
    arena: tuple[Path, Path],
) -> None:
    dest, outside = arena
    (dest / "data").mkdir()
    (dest / "data" / "f").symlink_to(outside / "victim")
    tar = archive(member("data", tarfile.DIRTYPE), member("data/f", data=b"x"))
    loader(dest, overwrite=True).load(io.BytesIO(tar), {})
    assert (outside / "victim").read_text() == "precious"
    assert not (dest / "data" / "f").is_symlink()
    assert (dest / "data" / "f").read_bytes() == b"x"


def test_a_preexisting_symlink_leading_outside_is_refused(arena: tuple[Path, Path]) -> None:
    dest, outside = arena
    (dest / "data").symlink_to(outside)
    with pytest.raises(BackupFailed, match="outside"):
        loader(dest, overwrite=True).load(io.BytesIO(archive(member("data/victim"))), {})
    assert (outside / "victim").read_text() == "precious"


def test_truncated_archive_fails(arena: tuple[Path, Path]) -> None:
    dest, _ = arena
    tar = archive(member("data", tarfile.DIRTYPE), member("data/a", data=os.urandom(5000)))
    with pytest.raises(BackupFailed, match="not a sound tar"):
        loader(dest).load(io.BytesIO(tar[:3000]), {})


def test_restore_needs_a_dir() -> None:
    with pytest.raises(UsageError, match="--dir DIR"):
        loader("")


def test_excludes_match_relative_path_and_basename() -> None:
    assert excluded("sub/x.log", False, ("*.log",))
    assert excluded("sub/deep/skip", False, ("sub/*/skip",))
    assert excluded("a/cache", True, ("cache",))
    assert excluded("a/cache", True, ("cache/",))
    assert not excluded("a/cache", False, ("cache/",))
    assert not excluded("sub/keep.txt", False, ("*.log", "other"))


def set_mtime(path: Path, seconds: int, quarters: int = 1) -> None:
    """Set an mtime that a float holds exactly: tar keeps mtimes to the microsecond."""
    ns = seconds * 10**9 + quarters * 250_000_000
    os.utime(path, ns=(ns, ns), follow_symlinks=False)


def build_tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "emptydir").mkdir()
    (root / "cache").mkdir()
    (root / "cache" / "big").write_bytes(b"c" * 1000)
    (root / "a.txt").write_text("hello\n")
    (root / "empty").write_bytes(b"")
    (root / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "script.sh").chmod(0o755)
    (root / "private").write_text("s")
    (root / "private").chmod(0o600)
    (root / "sub" / "deeper" / "b.bin").write_bytes(os.urandom(3 * MiB + 17))
    (root / "sub" / "deeper" / "skip.log").write_text("no")
    (root / "sub" / "scratch.tmp").write_text("no")
    (root / "link").symlink_to("a.txt")
    (root / "abslink").symlink_to("/etc/hostname")
    (root / "sub" / "up").symlink_to("..")
    os.link(root / "a.txt", root / "hard")
    for i, p in enumerate(sorted(root.rglob("*"), key=lambda p: -len(p.parts))):
        set_mtime(p, 1_500_000_000 + i * 1000)
    set_mtime(root, 1_400_000_000, 2)


def tree(root: Path) -> dict[str, tuple[str, int, int, bytes]]:
    """Every entry under ROOT (itself included): kind, mode, mtime_ns and content/target."""
    out: dict[str, tuple[str, int, int, bytes]] = {}
    for p in [root, *root.rglob("*")]:
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            kind, body = "link", os.readlink(p).encode()
        elif stat.S_ISDIR(st.st_mode):
            kind, body = "dir", b""
        else:
            kind, body = "file", p.read_bytes()
        mode = 0 if kind == "link" else stat.S_IMODE(st.st_mode)
        out[str(p.relative_to(root.parent))] = (kind, mode, st.st_mtime_ns, body)
    return out


def test_directory_round_trips_names_bytes_modes_mtimes_and_links(tmp_path: Path) -> None:
    src = tmp_path / "src" / "data"
    src.mkdir(parents=True)
    build_tree(src)
    source = DirectorySource(
        SourceSpec("data", dir=str(src), excludes=("cache", "*.tmp", "sub/*/skip.log"))
    )
    details = source.prepare()
    assert details == {"dir": str(src)}
    with source.open() as reader:
        stream = reader.read()
    assert source.warnings() == []
    details.update(source.finish())
    assert details == {
        "dir": str(src),
        "files": 6,
        "bytes": 6 + 0 + 18 + 1 + 3 * MiB + 17 + 6,
        "dirs": 4,
        "symlinks": 3,
    }
    names = tar_names(stream)
    assert names[0] == "data" and all(n == "data" or n.startswith("data/") for n in names)
    assert len(stream) % tarfile.RECORDSIZE == 0
    dest = tmp_path / "restored"
    summary = loader(dest).load(io.BytesIO(stream), details)
    assert summary == f"restored 6 files into {dest}"
    expected = {
        k: v for k, v in tree(src).items() if not any(x in k for x in ("cache", ".tmp", "skip.log"))
    }
    assert tree(dest / "data") == expected
    assert os.path.samefile(dest / "data" / "hard", dest / "data" / "a.txt")
    assert not list(dest.rglob(".tiffin-*"))


def test_missing_directory_fails_naming_it(tmp_path: Path) -> None:
    with pytest.raises(BackupFailed, match=f"{tmp_path}/nope does not exist"):
        DirectorySource(SourceSpec("data", dir=str(tmp_path / "nope"))).prepare()
    (tmp_path / "file").write_text("x")
    with pytest.raises(BackupFailed, match="is not a directory"):
        DirectorySource(SourceSpec("data", dir=str(tmp_path / "file"))).prepare()


def test_file_vanishing_during_the_backup_is_a_warning(tmp_path: Path) -> None:
    src = tmp_path / "data"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(24 * MiB))
    (src / "b.txt").write_text("soon gone")
    source = DirectorySource(SourceSpec("data", dir=str(src)))
    with source.open() as reader:
        head = reader.read(MiB)
        (src / "b.txt").unlink()
        stream = head + reader.read()
    names = tar_names(stream)
    assert names == ["data", "data/a.bin"]
    assert source.warnings() == [f"{src}/b.txt vanished during the backup and was skipped"]


def test_file_shrinking_while_read_is_padded_and_the_tar_stays_sound(tmp_path: Path) -> None:
    src = tmp_path / "data"
    src.mkdir()
    body = os.urandom(24 * MiB)
    (src / "a.bin").write_bytes(body)
    (src / "b.txt").write_text("after")
    source = DirectorySource(SourceSpec("data", dir=str(src)))
    with source.open() as reader:
        head = reader.read(MiB)  # the thread reads at most a few MiB ahead
        os.truncate(src / "a.bin", 12 * MiB)
        stream = head + reader.read()
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        a = tar.extractfile("data/a.bin")
        b = tar.extractfile("data/b.txt")
        assert a is not None and b is not None
        assert a.read() == body[: 12 * MiB] + bytes(12 * MiB)
        assert b.read() == b"after"
    assert len(source.warnings()) == 1 and "shrank while it was read" in source.warnings()[0]


def test_closing_the_reader_early_stops_the_tar_thread(tmp_path: Path) -> None:
    src = tmp_path / "data"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(32 * MiB))
    before = threading.active_count()
    reader = DirectorySource(SourceSpec("data", dir=str(src))).open()
    reader.read(MiB)
    reader.close()
    assert threading.active_count() == before


UNREADABLE = textwrap.dedent("""
    import os, sys
    from tiffin.errors import BackupFailed
    from tiffin.job import SourceSpec
    from tiffin.sources.directory import DirectorySource
    os.setgid(65534); os.setuid(65534)  # after the imports: root's Python is not nobody's
    reader = DirectorySource(SourceSpec("data", dir=sys.argv[1])).open()
    try:
        reader.read()
        reader.read()
    except BackupFailed as exc:
        print(exc)
        sys.exit(3)
""")


def test_unreadable_file_fails_the_backup_instead_of_ending_it(tmp_path: Path) -> None:
    # chmod 000 stops everyone but root, and the tests run as root: the reader then runs in
    # a child that drops to nobody. Its folder must be reachable by nobody, hence /tmp.
    base = Path(tempfile.mkdtemp(prefix="tiffin-test-"))
    try:
        base.chmod(0o755)
        src = base / "data"
        src.mkdir()
        (src / "ok").write_text("fine")
        (src / "secret").write_text("no")
        (src / "secret").chmod(0)
        if os.geteuid() != 0:
            reader = DirectorySource(SourceSpec("data", dir=str(src))).open()
            with pytest.raises(BackupFailed, match=f"cannot read {src}/secret"):
                reader.read()
            return
        proc = subprocess.run(
            [sys.executable, "-c", UNREADABLE, str(src)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 3, proc.stderr
        assert proc.stdout.strip() == f"cannot read {src}/secret: Permission denied"
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=True)


def test_stream_is_a_standard_tar_named_after_the_directory(tmp_path: Path) -> None:
    src = tmp_path / "src" / "photos"
    src.mkdir(parents=True)
    build_tree(src)
    alias = tmp_path / "alias"
    alias.symlink_to(src)  # --dir may itself be a symlink to the directory
    source = DirectorySource(SourceSpec("data", dir=str(alias)))
    with source.open() as reader:
        stream = reader.read()
    assert tar_names(stream)[:2] == ["alias", "alias/a.txt"]
    source = DirectorySource(SourceSpec("data", dir=str(src)))
    with source.open() as reader:
        stream = reader.read()
    out = tmp_path / "gnu"
    out.mkdir()
    subprocess.run(["tar", "-x", "-p", "-C", str(out)], input=stream, check=True)
    assert tree(out / "photos") == tree(src)


@settings(max_examples=60, deadline=None)
@given(
    runs=st.lists(st.tuples(st.booleans(), st.integers(1, 3 * 4096 + 7)), max_size=12),
    chunk=st.integers(1, 5 * 4096),
)
def test_sparse_writes_keep_every_byte(tmp_path_factory, runs, chunk):
    """Zeros written as holes read back as the same bytes, however the stream is cut."""
    from tiffin.sources.untarbits import write_sparse as _write_sparse

    data = b"".join(bytes(n) if zero else os.urandom(n) for zero, n in runs)
    path = tmp_path_factory.mktemp("sparse") / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for at in range(0, len(data), chunk):
            _write_sparse(fd, data[at : at + chunk])
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
    assert path.read_bytes() == data


def pax_sparse(realsize: int, pieces: list[tuple[int, int]], data: bytes) -> bytes:
    """A tar holding data/x as a PAX GNU sparse 1.0 member: PIECES (offset, size) of DATA
    in a file of REALSIZE bytes, holes between them."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        top = tarfile.TarInfo("data")
        top.type, top.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(top)
        head = f"{len(pieces)}\n" + "".join(f"{o}\n{n}\n" for o, n in pieces)
        body = head.encode() + bytes(-len(head) % 512) + data
        info = tarfile.TarInfo("data/GNUSparseFile.0/x")
        info.size, info.mode = len(body), 0o644
        info.pax_headers = {
            "GNU.sparse.major": "1",
            "GNU.sparse.minor": "0",
            "GNU.sparse.name": "data/x",
            "GNU.sparse.realsize": str(realsize),
        }
        tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def test_a_sparse_member_costs_its_stored_bytes_not_its_claimed_size(tmp_path):
    """A 1 KiB backup claiming a 1 TiB file with 3 bytes at its end restores at once, as a
    hole and the 3 bytes (tarfile's own reader would make a TiB of zeros first)."""
    dest = tmp_path / "out"
    loader(dest).load(io.BytesIO(pax_sparse(1 << 40, [((1 << 40) - 3, 3)], b"end")), {})
    got = dest / "data" / "x"
    assert got.stat().st_size == 1 << 40 and got.stat().st_blocks * 512 <= 1 << 20
    with open(got, "rb") as f:
        f.seek((1 << 40) - 8)
        assert f.read() == bytes(5) + b"end"


def holds(folder, size: int) -> bool:
    """Return whether the filesystem of FOLDER holds a file of SIZE bytes."""
    try:
        with open(folder / "probe", "wb") as f:
            f.truncate(size)
        return True
    except OSError:
        return False
    finally:
        (folder / "probe").unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("realsize", "pieces"),
    [
        (1 << 62, [(1 << 61, 3)]),
        (1 << 63, [(1 << 62, 3)]),
        (10, [(100, 3)]),
        (100, [(-5, 3)]),
        (100, [(0, 3), (0, 3)]),
    ],
    ids=[
        "past what a file may hold",
        "past what a file offset holds",
        "past its size",
        "negative",
        "out of order",
    ],
)
def test_a_hostile_sparse_map_is_refused_in_one_sentence(tmp_path, realsize, pieces):
    if realsize == 1 << 62 and holds(tmp_path, realsize):  # a tmpfs does (ext4 stops at 16 TiB)
        loader(tmp_path / "out").load(io.BytesIO(pax_sparse(realsize, pieces, b"abcabc")), {})
        got = tmp_path / "out" / "data" / "x"
        assert got.stat().st_size == realsize and got.stat().st_blocks * 512 <= 1 << 20
        return
    with pytest.raises(BackupFailed) as info:
        loader(tmp_path / "out").load(io.BytesIO(pax_sparse(realsize, pieces, b"abcabc")), {})
    assert "data/x" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("form", ["gnu", "posix"])
def test_sparse_files_from_gnu_tar_come_back_byte_for_byte_as_holes(tmp_path, form):
    src = tmp_path / "src" / "data"
    src.mkdir(parents=True)
    with open(src / "disk.img", "wb") as f:
        for at in (0, 5 * MiB + 7, 40 * MiB):
            f.seek(at)
            f.write(os.urandom(5000))
    tar = tmp_path / "s.tar"
    subprocess.run(
        ["tar", f"--format={form}", "--sparse", "-cf", str(tar), "-C", str(src.parent), "data"],
        check=True,
    )
    dest = tmp_path / "out"
    loader(dest).load(io.BytesIO(tar.read_bytes()), {})
    got = dest / "data" / "disk.img"
    assert got.read_bytes() == (src / "disk.img").read_bytes()
    assert got.stat().st_blocks * 512 < MiB

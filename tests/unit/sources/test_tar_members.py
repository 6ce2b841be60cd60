"""A restore reads the headers tiffin writes with a parser of its own (tiffin.sources
.tarmembers), handing every other header to tarfile. It must never take what tarfile and the
extractor's checks refuse: on archives tiffin writes, on those archives damaged at random,
and on hostile ones made in tiffin's own header shape, it yields exactly tarfile's members
(every field, the same error, the same end), and the restore refuses what it refused."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiffin.errors import BackupFailed
from tiffin.job import SourceSpec
from tiffin.sources.directory import DirectorySource
from tiffin.sources.tarheader import _header, _pax_record, _ustar
from tiffin.sources.tarmembers import Members
from tiffin.sources.untar import SafeExtractor
from tiffin.sources.untarbits import Forward

BLOCK = tarfile.BLOCKSIZE
KINDS = {
    tarfile.REGTYPE: stat.S_IFREG,
    tarfile.DIRTYPE: stat.S_IFDIR,
    tarfile.SYMTYPE: stat.S_IFLNK,
    tarfile.LNKTYPE: stat.S_IFREG,
    tarfile.CHRTYPE: stat.S_IFCHR,
    tarfile.FIFOTYPE: stat.S_IFIFO,
}
FIELDS = [s for s in tarfile.TarInfo.__slots__ if s != "tarfile"]
EXAMPLES = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def entry(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
    data: bytes = b"",
    mtime: float = 1764316800.25,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
) -> bytes:
    """An entry as tiffin's writer makes it: its header (tarheader._header), data, padding."""
    size = len(data) if kind == tarfile.REGTYPE else 0
    st = os.stat_result((KINDS[kind] | mode, 1, 1, 1, uid, gid, size, 0, 0, 0, 0, mtime, 0))
    body = data if kind == tarfile.REGTYPE else b""
    return _header(name, st, kind, link) + body + bytes(-len(body) % BLOCK)


def ending() -> bytes:
    return bytes(2 * BLOCK)


def parsed(raw: bytes, fast: bool) -> tuple[list[tuple[object, ...]], str | None, int]:
    """Read RAW's members as the extractor does (each regular member's data read before the
    next header); return every field of each, the error that ended it (None: the end), and
    how many members the fast parser read itself."""
    file = Forward(io.BytesIO(raw))
    found: list[tuple[object, ...]] = []
    members = Members(file) if fast else None
    try:
        read = members.next if members is not None else tarfile.TarFile(fileobj=file).next
        while True:
            member = read()
            if member is None:
                break
            found.append(tuple(repr(getattr(member, f, None)) for f in FIELDS))
            if member.isreg():
                file.seek(member.offset_data)
                file.read(min(member.size, 1 << 16))
    except Exception as exc:  # tarfile's own errors, whichever it raises
        return found, f"{type(exc).__name__}: {exc}", members.fast if members else 0
    return found, None, members.fast if members else 0


def same(raw: bytes) -> int:
    """Assert that the fast parser reads RAW as tarfile does; return how many it read itself."""
    fast = parsed(raw, True)
    slow = parsed(raw, False)
    assert fast[:2] == slow[:2]
    return fast[2]


def with_checksums(raw: bytearray) -> bytes:
    """Given an archive, give every block that looks like a ustar header a right checksum:
    a damaged header that tarfile would still take."""
    for at in range(0, len(raw) - BLOCK + 1, BLOCK):
        block = raw[at : at + BLOCK]
        if block[257:262] == b"ustar":
            block[148:156] = b"        "
            block[148:156] = b"%06o\0 " % sum(block)
            raw[at : at + BLOCK] = block
    return bytes(raw)


# ------------------------------------------------------------------ archives tiffin writes

NAME_CHARS = st.sampled_from([*"abcxyz019._-/", "..", "é", "\udcff", "日", " ", "\\"])
NAMES = st.lists(NAME_CHARS, min_size=1, max_size=60).map("".join) | st.sampled_from(
    ["a" * 100, "b" * 99 + "/", "c" * 101, "d/" * 60, "/abs", "../up", "./a/./b", "a//b"]
)
MTIMES = st.floats(min_value=-1e10, max_value=1e12, allow_nan=False) | st.sampled_from(
    [0.0, 1.5, -0.5, 1764316800.123456789, 8**11 - 0.5, 8**11 + 0.0, 1e16]
)
ENTRIES = st.lists(
    st.tuples(
        NAMES,
        st.sampled_from(
            [tarfile.REGTYPE] * 4 + [tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]
        ),
        NAMES,
        st.binary(max_size=1100),
        MTIMES,
        st.sampled_from([0o644, 0o755, 0o4755, 0o1777, 0o000, 0o7777]),
        st.sampled_from([0, 1000, 65534, 8**7 - 1, 8**7, 2**31]),
    ),
    max_size=6,
)


def archive_of(entries: list[tuple[str, bytes, str, bytes, float, int, int]]) -> bytes:
    return b"".join(
        entry(name, kind, link if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else "", data,
              mtime, mode, uid, uid)
        for name, kind, link, data, mtime, mode, uid in entries
    ) + ending()  # fmt: skip


@EXAMPLES
@given(ENTRIES)
def test_archives_tiffin_writes_read_as_tarfile_reads_them(entries: list) -> None:  # type: ignore[type-arg]
    same(archive_of(entries))


def test_the_common_entries_are_read_by_the_fast_parser() -> None:
    raw = b"".join(
        [
            entry("d/", tarfile.DIRTYPE, mode=0o755),
            *(entry(f"d/f{i}", data=b"x" * i) for i in range(40)),
            entry("d/ln", tarfile.SYMTYPE, "f1"),
            entry("d/hard", tarfile.LNKTYPE, "d/f2"),
            entry("a" * 100),  # a name that fills its field: no NUL after it
            entry("long/" + "n" * 120),  # tarfile's: a pax path record
            entry("d/after"),
            ending(),
        ]
    )
    assert same(raw) == 45  # all but the long name


TREE = st.lists(
    st.tuples(
        st.lists(st.sampled_from(["a", "b", "c d", "é", "x" * 70]), min_size=1, max_size=3),
        st.sampled_from(["file", "dir", "symlink", "hardlink"]),
        st.binary(max_size=3000),
    ),
    min_size=1,
    max_size=12,
)


@settings(EXAMPLES, max_examples=25)
@given(TREE)
def test_random_trees_come_back_whole_through_the_fast_parser(tree: list) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "data")
        src.mkdir()
        made: dict[str, bytes | None] = {}
        for parts, kind, data in tree:
            path = src.joinpath(*parts)
            taken = [path, *path.parents]
            if any(p.is_symlink() or p.is_file() for p in taken) or path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            rel = str(path.relative_to(src))
            if kind == "file" or (kind == "hardlink" and not any(made.values())):
                path.write_bytes(data)
                made[rel] = data
            elif kind == "dir":
                path.mkdir()
            elif kind == "symlink":
                path.symlink_to("../" + parts[-1])
            else:
                first = next(k for k, v in made.items() if v is not None)
                os.link(src / first, path)
                made[rel] = made[first]
        with DirectorySource(SourceSpec("data", dir=str(src))).open() as reader:
            raw = reader.read()
        assert same(raw) >= 1  # the top folder's entry at least: the fast parser was used
        dest = Path(tmp, "back")
        SafeExtractor(str(dest)).extract(io.BytesIO(raw))
        for rel, data in made.items():
            assert (dest / "data" / rel).read_bytes() == data
        for link in src.rglob("*"):
            if link.is_symlink():
                back = dest / "data" / link.relative_to(src)
                assert os.readlink(back) == os.readlink(link)


# ------------------------------------------------------------------ damaged at random


@EXAMPLES
@given(
    ENTRIES.filter(bool),
    st.lists(st.tuples(st.integers(0, 4 * BLOCK - 1), st.integers(0, 255)), min_size=1, max_size=6),
    st.booleans(),
    st.integers(0, 3 * BLOCK),
)
def test_damaged_archives_read_as_tarfile_reads_them(
    entries: list,  # type: ignore[type-arg]
    edits: list[tuple[int, int]],
    fix_checksums: bool,
    cut: int,
) -> None:
    raw = bytearray(archive_of(entries))
    for at, value in edits:
        raw[at % len(raw)] = value
    data = with_checksums(raw) if fix_checksums else bytes(raw)
    same(data[: len(data) - cut])


@EXAMPLES
@given(
    st.sampled_from(["size", "path", "linkpath", "mtime", "uid", "uname", "x", "hdrcharset"]),
    st.sampled_from(["", "0", "-1", "99999999999999999999", "../../evil", "/etc", "a\nb", "1.5"]),
    st.integers(-3, 3),
)
def test_odd_extended_records_read_as_tarfile_reads_them(key: str, value: str, skew: int) -> None:
    record = _pax_record(key.encode(), value.encode())
    if skew:  # a length that does not count the record right
        digits = record.split(b" ", 1)
        record = b"%d %s" % (max(0, int(digits[0]) + skew), digits[1])
    pax = _ustar(b"././@PaxHeader", 0, 0, 0, len(record), 0, tarfile.XHDTYPE, b"", b"", b"")
    plain = entry("f", data=b"abc")
    raw = pax + record + bytes(-len(record) % BLOCK) + plain[BLOCK * 2 :] + entry("g") + ending()
    same(raw)


# ------------------------------------------------------------------ hostile, in tiffin's shape


def pax_entry(
    records: dict[str, str], name: str, kind: bytes = tarfile.REGTYPE, link: str = ""
) -> bytes:
    """An entry whose extended header holds RECORDS (tarfile's, read by tarfile)."""
    body = b"".join(_pax_record(k.encode(), v.encode()) for k, v in records.items())
    pax = _ustar(b"././@PaxHeader", 0, 0, 0, len(body), 0, tarfile.XHDTYPE, b"", b"", b"")
    plain = entry(name, kind, link)
    return pax + body + bytes(-len(body) % BLOCK) + plain[2 * BLOCK :]


def nul_in_name() -> bytes:
    raw = bytearray(entry("a" * 20))
    raw[2 * BLOCK + 1] = 0  # "a\0aaa...": tarfile reads "a"; the fast parser passes it on
    return with_checksums(raw)


def huge() -> bytes:
    raw = bytearray(entry("big", data=b"x"))
    raw[2 * BLOCK + 124 : 2 * BLOCK + 136] = b"77777777777\0"  # 8 GiB - 1 of data, not there
    return with_checksums(raw)


def bad_checksum(block: int) -> bytes:
    """A good entry, then "../bad" with a bad checksum in its BLOCK (0: the extended header,
    2: the ustar block)."""
    raw = bytearray(entry("ok", data=b"fine") + entry("../bad"))
    raw[(4 + block) * BLOCK + 148] ^= 1
    return bytes(raw)


HOSTILE = {
    "dot-dot": lambda: entry("../evil", data=b"x"),
    "dot-dot inside": lambda: entry("a/../../evil", data=b"x"),
    "absolute": lambda: entry("/tmp/evil-tiffin-abs", data=b"x"),
    "symlink then through it": lambda: entry("ln", tarfile.SYMTYPE, "..") + entry("ln/evil"),
    "symlink to a dir, then a dir through it": lambda: (
        entry("ln", tarfile.SYMTYPE, "/tmp") + entry("ln/sub/", tarfile.DIRTYPE)
    ),
    "hard link out": lambda: entry("hard", tarfile.LNKTYPE, "../../etc/passwd"),
    "hard link to nothing restored": lambda: entry("hard", tarfile.LNKTYPE, "etc/passwd"),
    "character device": lambda: entry("dev", tarfile.CHRTYPE),
    "fifo": lambda: entry("fifo", tarfile.FIFOTYPE),
    "huge size": huge,
    "NUL in a name": lambda: nul_in_name() + entry("../evil"),
    "bad checksum in the ustar block": lambda: bad_checksum(2),
    "bad checksum in the extended header": lambda: bad_checksum(0),
    "pax path out": lambda: pax_entry({"path": "../evil"}, "innocent"),
    "pax linkpath out": lambda: pax_entry({"linkpath": "../../etc/passwd"}, "h", tarfile.LNKTYPE),
    "pax size": lambda: pax_entry({"size": "99999999"}, "f"),
    "pax global path": lambda: global_header({"path": "../evil"}) + entry("ok"),
    "the directory itself replaced": lambda: entry(".", data=b"x"),
}


def global_header(records: dict[str, str]) -> bytes:
    body = b"".join(_pax_record(k.encode(), v.encode()) for k, v in records.items())
    pax = _ustar(b"././@PaxHeader", 0, 0, 0, len(body), 0, tarfile.XGLTYPE, b"", b"", b"")
    return pax + body + bytes(-len(body) % BLOCK)


def outside(root: Path, dest: Path) -> list[str]:
    """Every path under ROOT that is not DEST, inside it, or the archive."""
    found = []
    for path in root.rglob("*"):
        if path != dest and dest not in path.parents and path.name != "archive.tar":
            found.append(str(path))
    return found


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_archives_are_refused_as_before_and_nothing_lands_outside(
    case: str, tmp_path: Path
) -> None:
    raw = HOSTILE[case]() + ending()
    same(raw)
    dest = tmp_path / "dest"
    with pytest.raises(BackupFailed) as refused:
        SafeExtractor(str(dest)).extract(io.BytesIO(raw))
    assert "\n" not in str(refused.value)
    assert outside(tmp_path, dest) == []
    assert not os.path.lexists("/tmp/evil-tiffin-abs")


def test_a_tiffin_shaped_hostile_entry_is_read_by_the_fast_parser() -> None:
    # The cases above in tiffin's own shape do reach the fast parser: it is what is tested.
    file = Forward(io.BytesIO(entry("../evil", data=b"x") + entry("/abs") + ending()))
    members = Members(file)
    names = []
    while (member := members.next()) is not None:
        names.append(member.name)
    assert names == ["../evil", "/abs"]
    assert members.fast == 2


def test_a_header_tarfile_takes_for_the_end_fails_the_restore(tmp_path: Path) -> None:
    # tarfile ends quietly at an unreadable header past the first member; a restore made
    # with --force (no manifest, so no sha256 checked first) must not report that a success.
    raw = bad_checksum(0) + ending()
    file = Forward(io.BytesIO(raw))
    members = Members(file)
    while members.next() is not None:
        pass
    assert members.damaged_at == 4 * BLOCK
    with pytest.raises(BackupFailed, match="a damaged header at byte 2048"):
        SafeExtractor(str(tmp_path / "dest")).extract(io.BytesIO(raw))
    assert (tmp_path / "dest" / "ok").read_bytes() == b"fine"


def test_an_archive_that_ends_with_its_zero_blocks_is_not_damaged() -> None:
    members = Members(Forward(io.BytesIO(entry("a", data=b"x") + ending())))
    while members.next() is not None:
        pass
    assert members.damaged_at is None

"""Tar headers as GNU tar and Python's tarfile read them: ustar, with a pax extended header
for what ustar cannot hold (long names and links, large sizes and times, non-ASCII)."""

from __future__ import annotations

import functools
import grp
import os
import pwd
import stat
import struct
import tarfile

_ZEROS = memoryview(bytes(1 << 16))


_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s183x")


def _header(arc: str, st: os.stat_result, kind: bytes, link: str = "") -> bytes:
    """Return the header of the entry ARC of type KIND (with link target LINK) for the lstat
    ST: byte for byte what TarInfo.tobuf(PAX_FORMAT) writes, an extended header holding the
    mtime with its fraction, then the ustar block. Names and numbers that a ustar block
    cannot hold are left to tarfile. The fields that come from the owner and mode, and their
    share of the checksum, are made once per (mode, uid, gid): 2-3 us an entry, not 10."""
    name = arc + "/" if kind == tarfile.DIRTYPE and not arc.endswith("/") else arc
    size = st.st_size if kind == tarfile.REGTYPE else 0
    mtime = round(st.st_mtime)
    owner = _owner(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    if (
        owner is None
        or len(name) > 100
        or len(link) > 100
        or not (name + link).isascii()
        or size >= 8**11
        or not 0 <= mtime < 8**11
    ):
        return _tarfile_header(arc, st, kind, link, size)
    value = str(st.st_mtime).encode()
    # "LEN mtime=VALUE\n", LEN counting the whole record: 2 digits up to 99 bytes
    record = b"%d mtime=%s\n" % (len(value) + 10, value) if len(value) < 90 else b""
    record = record or _pax_record(b"mtime", value)
    bname, blink = name.encode(), link.encode()
    numbers = b"%011o\0%011o\0" % (size, mtime)
    check = owner[2] + sum(bname) + sum(blink) + sum(numbers) + kind[0]
    return b"".join(
        (
            pax_block(len(record)),
            record,
            _ZEROS[: -len(record) % tarfile.BLOCKSIZE],
            bname,
            _ZEROS[: 100 - len(bname)],
            owner[0],
            numbers,
            b"%06o\0 " % check,
            kind,
            blink,
            _ZEROS[: 100 - len(blink)],
            owner[1],
        )
    )


@functools.lru_cache(maxsize=256)
def _owner(mode: int, uid: int, gid: int) -> tuple[bytes, bytes, int] | None:
    """Given a mode and owner, return the ustar fields they fill (mode, uid, gid; then the
    magic, uname, gname and the zeros to the block's end) and their checksum with that of
    the checksum field's spaces; None if a ustar block cannot hold them."""
    uname, gname = _uname(uid).encode(), _gname(gid).encode()
    if not (uid < 8**7 and gid < 8**7 and len(uname) <= 32 and len(gname) <= 32):
        return None
    if not (uname + gname).isascii():
        return None
    ids = b"%07o\0%07o\0%07o\0" % (mode, uid, gid)
    rest = tarfile.POSIX_MAGIC + uname.ljust(32, b"\0") + gname.ljust(32, b"\0") + bytes(183)
    return ids, rest, sum(ids) + sum(rest) + 8 * ord(" ")


def _tarfile_header(arc: str, st: os.stat_result, kind: bytes, link: str, size: int) -> bytes:
    """The header of an entry that a plain ustar block cannot hold, as tarfile writes it."""
    info = tarfile.TarInfo(arc)
    info.type, info.linkname = kind, link
    info.mode, info.mtime = stat.S_IMODE(st.st_mode), st.st_mtime
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname, info.gname = _uname(st.st_uid), _gname(st.st_gid)
    info.size = size
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


def _pax_record(keyword: bytes, value: bytes) -> bytes:
    """Return the extended header record "LEN KEYWORD=VALUE" and a newline, LEN counting
    the whole record, its own digits too."""
    body = b" %s=%s\n" % (keyword, value)
    p = 0
    while (n := len(body) + len(str(p))) != p:
        p = n
    return b"%d%s" % (n, body)


@functools.lru_cache(maxsize=16)
def pax_block(size: int) -> bytes:
    """Return the ustar block that starts an extended header of SIZE bytes of records."""
    return _ustar(b"././@PaxHeader", 0, 0, 0, size, 0, tarfile.XHDTYPE, b"", b"", b"")


def _ustar(
    name: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    kind: bytes,
    link: bytes,
    uname: bytes,
    gname: bytes,
) -> bytes:
    """Return the ustar block of these fields, which must fit it, as tarfile writes it."""
    block = _USTAR.pack(
        name,
        b"%07o\0" % mode,
        b"%07o\0" % uid,
        b"%07o\0" % gid,
        b"%011o\0" % size,
        b"%011o\0" % mtime,
        b"        ",
        kind,
        link,
        tarfile.POSIX_MAGIC,
        uname,
        gname,
    )
    return b"%s%06o\0%s" % (block[:148], sum(block), block[155:])


@functools.lru_cache(maxsize=256)
def _uname(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


@functools.lru_cache(maxsize=256)
def _gname(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""

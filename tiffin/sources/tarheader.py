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
    cannot hold are left to tarfile."""
    name = arc + "/" if kind == tarfile.DIRTYPE and not arc.endswith("/") else arc
    uname, gname = _uname(st.st_uid), _gname(st.st_gid)
    size = st.st_size if kind == tarfile.REGTYPE else 0
    mtime = round(st.st_mtime)
    if not (
        len(name) <= 100
        and len(link) <= 100
        and len(uname) <= 32
        and len(gname) <= 32
        and (name + link + uname + gname).isascii()
        and st.st_uid < 8**7
        and st.st_gid < 8**7
        and size < 8**11
        and 0 <= mtime < 8**11
    ):
        info = tarfile.TarInfo(arc)
        info.type, info.linkname = kind, link
        info.mode, info.mtime = stat.S_IMODE(st.st_mode), st.st_mtime
        info.uid, info.gid, info.uname, info.gname = st.st_uid, st.st_gid, uname, gname
        info.size = size
        return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
    record = _pax_record(b"mtime", str(st.st_mtime).encode())
    return b"".join(
        (
            _pax_block(len(record)),
            record,
            tarfile.NUL * (-len(record) % tarfile.BLOCKSIZE),
            _ustar(
                name.encode(),
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                size,
                mtime,
                kind,
                link.encode(),
                uname.encode(),
                gname.encode(),
            ),
        )
    )


def _pax_record(keyword: bytes, value: bytes) -> bytes:
    """Return the extended header record "LEN KEYWORD=VALUE" and a newline, LEN counting
    the whole record, its own digits too."""
    body = b" %s=%s\n" % (keyword, value)
    p = 0
    while (n := len(body) + len(str(p))) != p:
        p = n
    return b"%d%s" % (n, body)


@functools.lru_cache(maxsize=16)
def _pax_block(size: int) -> bytes:
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

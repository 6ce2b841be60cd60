"""The low-level parts of tar extraction (see tiffin.sources.untar): writing a member's
bytes with holes where it had them, owners by name, and the archive read as a file."""

from __future__ import annotations

import contextlib
import functools
import grp
import io
import mmap
import os
import pwd
import tarfile
from typing import TYPE_CHECKING

from tiffin.engine.streams import BLOCK, Reader

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

PAGE = 4096
_ZERO_PAGE = bytes(PAGE)


def write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def write_sparse(fd: int, data: bytes) -> bool:
    """Write DATA at FD's offset, skipping (seeking over) every page-aligned page of zeros,
    which the file system keeps as a hole; return whether DATA ends with one (the file must
    then be given its size). A block holding no page of zeros at all, the usual case, is
    written in one go."""
    view = memoryview(data)
    if data.find(_ZERO_PAGE) < 0:
        write_all(fd, view)
        return False
    pos = os.lseek(fd, 0, os.SEEK_CUR)
    start = 0  # first byte of DATA not yet written or skipped
    first = -pos % PAGE  # the first page boundary of the file within DATA
    for at in range(first, len(view) - PAGE + 1, PAGE):
        if view[at : at + PAGE] == _ZERO_PAGE:
            if start < at:
                write_all(fd, view[start:at])
            os.lseek(fd, pos + at + PAGE, os.SEEK_SET)
            start = at + PAGE
    write_all(fd, view[start:])
    return start == len(view)


def write_sparse_at(fd: int, data: bytes | mmap.mmap, offset: int, size: int) -> None:
    """Write the first SIZE bytes of DATA at OFFSET of FD as write_sparse() does (pages of
    zeros left as holes), with pwrite: the file's offset is not used, so that several threads
    may write one file. Only the pages at the file's page boundaries are looked at, each
    by its first byte, then whole (a search for a page of zeros anywhere in DATA costs ten
    times as much in a database's relation files, whose pages hold runs of zeros)."""
    view = memoryview(data)[:size]
    start = 0  # first byte of DATA not yet written or skipped
    for at in range(-offset % PAGE, size - PAGE + 1, PAGE):
        if data[at] == 0 and data[at : at + PAGE] == _ZERO_PAGE:
            _pwrite_all(fd, view[start:at], offset + start)
            start = at + PAGE
    _pwrite_all(fd, view[start:], offset + start)


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def uid_of(member: tarfile.TarInfo) -> int:
    return _user(member.uname, member.uid) if member.uname else member.uid


def gid_of(member: tarfile.TarInfo) -> int:
    return _group(member.gname, member.gid) if member.gname else member.gid


@functools.lru_cache(maxsize=256)
def _user(name: str, default: int) -> int:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name).pw_uid
    return default


@functools.lru_cache(maxsize=256)
def _group(name: str, default: int) -> int:
    with contextlib.suppress(KeyError):
        return grp.getgrnam(name).gr_gid
    return default


class Forward(io.RawIOBase):
    """READER as a file for tarfile's seekable mode ("r:"), which reads a member's data in
    reads of the size asked, where its stream mode ("r|") reads 10 KiB at a time and copies
    what it holds at each read. tell() counts the bytes read; seek() only moves forward,
    reading what it skips, and raises tarfile.StreamError to move back, as the stream mode
    does. unread() puts bytes back, to be read again first (tiffin.sources.tarmembers hands
    a header it does not take to tarfile that way)."""

    def __init__(self, reader: Reader) -> None:
        super().__init__()
        self._reader = reader
        self._pos = 0
        self._back = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = b""
        if self._back:
            data = self._back
            if 0 <= size <= len(data):
                self._back = data[size:]
                self._pos += size
                return data[:size]
            self._back = b""
            size = size - len(data) if size >= 0 else size
        data += self._reader.read(size)
        self._pos += len(data)
        return data

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Read into BUFFER straight from the reader when it can (no object in between)."""
        out = memoryview(buffer)
        if self._back:  # bytes put back come first
            n = min(len(out), len(self._back))
            out[:n] = self._back[:n]
            self._back = self._back[n:]
            self._pos += n
            return n
        readinto = getattr(self._reader, "readinto", None)
        if readinto is not None:
            n = readinto(out)
        else:
            data = self._reader.read(len(out))
            n = len(data)
            out[:n] = data
        self._pos += n
        return n

    def unread(self, data: bytes) -> None:
        """Put DATA, the last bytes read, back: the next reads return them first."""
        self._back = data + self._back
        self._pos -= len(data)

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET or pos < self._pos:
            raise tarfile.StreamError("seeking backwards is not allowed")
        while self._pos < pos and self.read(min(BLOCK, pos - self._pos)):
            pass
        return self._pos

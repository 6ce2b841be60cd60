"""The xbstream format (mariabackup --stream=xbstream), read as it passes: a check that lets
through, unchanged, only a stream whose every file stays inside the folder it is unpacked
into, before mbstream writes a byte of it.

A stream is a sequence of chunks, each:
    magic "XBSTCK01" | flags (1) | type (1: 'P' payload, 'E' end of a file) |
    path length (4, little-endian) | path |
    ('P' only) payload length (8) | payload offset (8) | crc32 (4) | payload
A chunk of another type is refused unless its flags say it may be ignored (as mbstream
does). mbstream checks the checksums and offsets itself; this reader checks what mbstream
does not: every path is relative, made of plain names (no '', '.', '..' or NUL), and not
too long; a payload is not larger than MAX_PAYLOAD (mbstream holds a whole payload in
memory); and the stream does not end inside a chunk.
"""

from __future__ import annotations

import struct

from tiffin.engine.streams import Reader
from tiffin.errors import BackupFailed

MAGIC = b"XBSTCK01"
HEAD = 14  # magic, flags, type, path length
PATH_MAX = 511  # mbstream's FN_REFLEN - 1
MAX_PAYLOAD = 256 << 20  # mariabackup writes chunks of 10 MiB
IGNORABLE = 0x01
PAYLOAD, EOF = ord("P"), ord("E")


class Refused(BackupFailed):
    """The stream is not a mariabackup stream this restore may unpack; str() says why."""


def check_path(raw: bytes) -> str:
    """Given a chunk's path, return it as text if it names a file inside the folder it is
    unpacked into. Raise Refused otherwise."""
    text = raw.decode("utf-8", "replace")
    if not raw or b"\0" in raw or raw.startswith(b"/") or b"\\" in raw:
        raise Refused(
            f"the backup holds the file path {text!r}, which is not a plain relative path"
        )
    if any(part in (b"", b".", b"..") for part in raw.split(b"/")):
        raise Refused(f"the backup holds the file path {text!r}, which leads out of its folder")
    return text


class Checked:
    """A reader that passes an xbstream through unchanged, raising Refused (before passing
    the block that holds it) at the first chunk that check_path or the limits refuse, or if
    the stream ends inside a chunk. Only chunk headers are copied; payloads pass as they are.
    `files` is the set of paths seen."""

    def __init__(self, inner: Reader) -> None:
        self.inner = inner
        self.files: set[str] = set()
        self._head = bytearray()  # the header bytes of the chunk being read
        self._need = HEAD  # how long the header being read is, as far as it tells yet
        self._skip = 0  # checksum and payload bytes still to pass before the next header
        self._done = False

    def read(self, size: int = -1, /) -> bytes:
        data = self.inner.read(size)
        if not data:
            if not self._done and (self._head or self._skip):
                self._done = True
                raise Refused("the backup's stream ends inside a file: it is cut short")
            self._done = True
            return data
        self._scan(memoryview(data))
        return data

    def _scan(self, view: memoryview) -> None:
        pos = 0
        while pos < len(view):
            if self._skip:
                step = min(self._skip, len(view) - pos)
                self._skip -= step
                pos += step
                continue
            take = min(self._need - len(self._head), len(view) - pos)
            self._head += view[pos : pos + take]
            pos += take
            if len(self._head) == self._need:
                self._advance()

    def _advance(self) -> None:
        """Check what _head holds once it is as long as _need: the fixed header (then read
        on to the path and the lengths), or the whole header (then pass the payload)."""
        head = bytes(self._head)
        flags, kind = head[8], head[9]
        (plen,) = struct.unpack_from("<I", head, 10)
        if len(head) == HEAD:
            if head[:8] != MAGIC:
                raise Refused(
                    "the backup is not a mariabackup stream (no xbstream chunk where one should be)"
                )
            if kind not in (PAYLOAD, EOF) and not flags & IGNORABLE:
                raise Refused(f"the backup holds an xbstream chunk of unknown type {kind:#x}")
            if plen > PATH_MAX or plen == 0:
                raise Refused(f"the backup holds a file path of {plen:,} bytes: it is no backup")
            self._need = HEAD + plen + (0 if kind == EOF else 16)
            return
        self.files.add(check_path(head[HEAD : HEAD + plen]))
        self._head.clear()
        self._need = HEAD
        if kind != EOF:
            (length,) = struct.unpack_from("<Q", head, HEAD + plen)
            if length > MAX_PAYLOAD:
                raise Refused(
                    f"the backup holds a chunk of {length:,} bytes, over the {MAX_PAYLOAD:,} "
                    "a mariabackup stream has"
                )
            self._skip = length + 4  # its checksum is read after the lengths, then it

    def close(self) -> None:
        self.inner.close()

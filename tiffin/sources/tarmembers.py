"""The members of a tar stream, as tarfile reads them, the headers tiffin writes read faster.

tarfile parses two headers an entry in Python (a pax extended header, then the ustar block):
about 40 us an entry, the bulk of a restore of many small files. Members reads the shape
that tiffin's own writer gives every entry it can (tiffin/sources/tarheader.py): the
extended header block exactly as tiffin makes it, one `mtime` record, then a ustar block of
a file, directory, symlink or hard link with ASCII names, octal fields in their usual
widths, no prefix, no device numbers and the checksum as written. Anything else, to the
last byte, is handed to tarfile itself, from that header on to the next: an archive of
another tar, a long or non-ASCII name, a damaged or hostile header, the end of the archive.
So Members accepts exactly what tarfile accepts, and yields TarInfo objects equal to
tarfile's in every field (tests/unit/sources/test_tar_members.py holds it to that, on
archives tiffin writes and on hostile ones); the extractor's checks come after, unchanged.
"""

from __future__ import annotations

import re
import tarfile

from tiffin.sources.tarheader import pax_block
from tiffin.sources.untarbits import Forward

BLOCK = tarfile.BLOCKSIZE
# "NN mtime=SECONDS.FRACTION\n", as str() of a float writes a time of this era
_RECORD = re.compile(rb"(\d\d) mtime=(\d{1,11}\.\d{1,9})\n")
# mode, uid, gid, size, mtime and the checksum, as tiffin writes them
_NUMBERS = re.compile(
    rb"([0-7]{7})\0([0-7]{7})\0([0-7]{7})\0([0-7]{11})\0([0-7]{11})\0([0-7]{6})\0 "
)
_TEXT = re.compile(rb"[\x01-\x7f]*\0*")  # ASCII, then NULs to the field's end
_KINDS = frozenset({tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE})
_ZEROS = bytes(BLOCK)
_EIGHTS = (8,) * 6


class Members:
    """Reads the members of the plain tar on FILE (a Forward) one at a time: next() returns
    the next member as tarfile's next() would, None at the archive's end, and raises what
    it raises. The caller reads a regular member's data at its offset_data, as from a
    TarFile opened in "r:" mode, before asking for the next one."""

    def __init__(self, file: Forward) -> None:
        self.file = file
        self.fast = 0  # members read here, not by tarfile (for the tests)
        # Where tarfile stopped at a header it could not read (a bad checksum, a cut block)
        # and took it for the archive's end, as it does past the first member; None if the
        # archive ended with its zero block (or tarfile read from a global header on).
        self.damaged_at: int | None = None
        self._peek = b""  # the first block the fast parser put back
        self._tar: tarfile.TarFile | None = None
        self._offset = file.tell()  # where the next header starts
        self._done = False

    def next(self) -> tarfile.TarInfo | None:
        if self._done:
            return None
        tar = self._tar
        self._peek = b""
        if tar is None or not tar.pax_headers:  # a global header applies to all that follow
            f = self.file
            gap = self._offset - f.tell()  # the rest of the last member's data, and padding
            if 0 < gap <= BLOCK:  # as tarfile's seek to the byte before, and read of it
                if len(f.read(gap)) < gap:
                    raise tarfile.ReadError("unexpected end of data")
            elif gap:
                f.seek(self._offset - 1)
                if not f.read(1):
                    raise tarfile.ReadError("unexpected end of data")
            member = self._read()
            if member is not None:
                self.fast += 1
                return member
        if tar is None:
            tar = self._tar = tarfile.TarFile(fileobj=self.file, mode="r")
            member = vars(tar)["firstmember"]  # read as it opened (typeshed omits the field)
            vars(tar)["firstmember"] = None
        else:
            tar.offset = self._offset
            member = tar.next()
        vars(tar)["members"].clear()  # a stream of any length: keep no list of the members
        if member is None:
            self._done = True
            if self._peek.strip(b"\0"):
                self.damaged_at = self._offset
        else:
            self._offset = tar.offset
        return member

    def _read(self) -> tarfile.TarInfo | None:
        """Read the next entry if it has the shape tiffin writes; else put back what was
        read and return None."""
        f = self.file
        start = self._offset
        blocks = f.read(3 * BLOCK)
        member = _member(blocks) if len(blocks) == 3 * BLOCK else None
        if member is None:
            f.unread(blocks)
            self._peek = blocks[:BLOCK]
            return None
        member.offset = start
        member.offset_data = start + 3 * BLOCK
        size = member.size if member.type == tarfile.REGTYPE else 0
        self._offset = member.offset_data + -(-size // BLOCK) * BLOCK
        return member


def _member(blocks: bytes) -> tarfile.TarInfo | None:
    """Given the three blocks of an entry as tiffin writes it (the extended header, its one
    block of records, the ustar block), return the member tarfile would make of them; None
    if they are not exactly of that shape."""
    m = _RECORD.match(blocks, BLOCK)
    if m is None:
        return None
    length = m.end() - BLOCK
    if int(m.group(1)) != length or blocks[m.end() : 2 * BLOCK] != _ZEROS[length:]:
        return None
    if blocks[:BLOCK] != pax_block(length):
        return None
    head = blocks[2 * BLOCK :]
    numbers = _NUMBERS.fullmatch(head, 100, 156)
    kind = head[156:157]
    if (
        numbers is None
        or kind not in _KINDS
        or head[257:265] != tarfile.POSIX_MAGIC
        or head[329:] != _ZEROS[329:]
        or not (
            _TEXT.fullmatch(head, 0, 100)
            and _TEXT.fullmatch(head, 157, 257)
            and _TEXT.fullmatch(head, 265, 297)
            and _TEXT.fullmatch(head, 297, 329)
        )
    ):
        return None
    mode, uid, gid, size, _mtime, check = map(int, numbers.groups(), _EIGHTS)
    if check != sum(head) - sum(head[148:156]) + 256 or (size and kind != tarfile.REGTYPE):
        return None
    member = tarfile.TarInfo()
    name = head[0:100].rstrip(b"\0").decode("ascii")  # the fields _TEXT matched
    member.name = name.rstrip("/") if kind == tarfile.DIRTYPE else name
    member.mode, member.uid, member.gid = mode, uid, gid
    member.size, member.chksum, member.type = size, check, kind
    member.linkname = head[157:257].rstrip(b"\0").decode("ascii")
    member.uname = head[265:297].rstrip(b"\0").decode("ascii")
    member.gname = head[297:329].rstrip(b"\0").decode("ascii")
    value = m.group(2).decode("ascii")
    member.mtime = float(value)
    member.pax_headers = {"mtime": value}
    return member

"""Extraction of a tar stream that never writes outside its destination.

Layers, each enough on its own for what it covers: names are cleaned and refused when
absolute or holding '..'; only files, directories, symlinks and hard links to files restored
before are accepted; every parent of every member is checked with lstat to be a real
directory inside DEST, never a symlink restored from the archive; files are written under a
temp name with O_EXCL|O_NOFOLLOW and linked (or, with overwrite, renamed) into place, so an
existing file is never written through.

These are the checks of tarfile's `data` filter (Python 3.11.4 and later), made here on every
Python tiffin supports (Debian 12 ships 3.11.2, which has no filters): no absolute name, no
name leading out, no special file, a hard link only to a file of this archive, no setuid,
setgid or sticky bit and no group or other write bit. Two differences, both kept on purpose:
a symlink's own target may lead anywhere (it is restored as stored, and nothing is ever
written through a symlink), and owners and the other mode bits are restored (a backup brings
back the folder as it was). Runs of zeros of a page or more are written as holes, so a
sparse file comes back sparse instead of as gigabytes of zeros.
"""

from __future__ import annotations

import contextlib
import functools
import grp
import io
import os
import pwd
import secrets
import stat
import tarfile

from tiffin.engine.streams import BLOCK, Reader
from tiffin.errors import BackupFailed

PAGE = 4096
_ZERO_PAGE = bytes(PAGE)
# As tar's data filter: no setuid, setgid or sticky bit, no group or other write.
_MODE = 0o755


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def _write_sparse(fd: int, data: bytes) -> None:
    """Write DATA at FD's offset, skipping (seeking over) every page-aligned page of zeros,
    which the file system keeps as a hole. A block holding no page of zeros at all, the
    usual case, is written in one go."""
    view = memoryview(data)
    if data.find(_ZERO_PAGE) < 0:
        _write_all(fd, view)
        return
    pos = os.lseek(fd, 0, os.SEEK_CUR)
    start = 0  # first byte of DATA not yet written or skipped
    first = -pos % PAGE  # the first page boundary of the file within DATA
    for at in range(first, len(view) - PAGE + 1, PAGE):
        if view[at : at + PAGE] == _ZERO_PAGE:
            if start < at:
                _write_all(fd, view[start:at])
            os.lseek(fd, pos + at + PAGE, os.SEEK_SET)
            start = at + PAGE
    _write_all(fd, view[start:])


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _uid(member: tarfile.TarInfo) -> int:
    return _user(member.uname, member.uid) if member.uname else member.uid


def _gid(member: tarfile.TarInfo) -> int:
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


class _Forward(io.RawIOBase):
    """READER as a file for tarfile's seekable mode ("r:"), which reads a member's data in
    reads of the size asked, where its stream mode ("r|") reads 10 KiB at a time and copies
    what it holds at each read. tell() counts the bytes read; seek() only moves forward,
    reading what it skips, and raises tarfile.StreamError to move back, as the stream mode
    does."""

    def __init__(self, reader: Reader) -> None:
        super().__init__()
        self._reader = reader
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._reader.read(size)
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET or pos < self._pos:
            raise tarfile.StreamError("seeking backwards is not allowed")
        while self._pos < pos and self.read(min(BLOCK, pos - self._pos)):
            pass
        return self._pos


class SafeExtractor:
    """Extracts tar streams into DEST (created when missing); OVERWRITE lets an existing
    file or symlink be replaced (a directory never is; directories are merged)."""

    def __init__(self, dest: str, overwrite: bool = False) -> None:
        self.dest = dest
        self.overwrite = overwrite
        self._root = dest
        self._symlinks: set[str] = set()
        self._files: set[str] = set()
        self._dirs: list[tuple[str, tarfile.TarInfo]] = []

    def extract(self, reader: Reader) -> int:
        """Given a reader of a plain tar, extract it, read READER to its end, and return the
        count of files (and hard links) restored. Owners are restored when run as root,
        modes and mtimes always (directories' after their content). Raise BackupFailed
        naming the first member refused and why, or if the tar is damaged."""
        os.makedirs(self.dest, exist_ok=True)
        self._root = os.path.realpath(self.dest)
        try:
            with tarfile.open(fileobj=_Forward(reader), mode="r:") as tar:
                while (member := tar.next()) is not None:
                    try:
                        self._extract(tar, member)
                    except OSError as exc:
                        raise BackupFailed(
                            f"restoring {member.name} failed: {exc.strerror or exc}"
                        ) from None
                    # A stream of any length: keep no list of the members seen.
                    vars(tar)["members"].clear()  # (typeshed does not declare the list)
        except tarfile.TarError as exc:
            self._unlink_symlinks()
            raise BackupFailed(f"the backup is not a sound tar stream: {exc}") from None
        except BaseException:
            self._unlink_symlinks()
            raise
        for path, member in reversed(self._dirs):
            st = _lstat(path)
            if st is not None and stat.S_ISDIR(st.st_mode):
                self._attrs(path, member)
        while reader.read(BLOCK):  # the bytes after the archive's end, for upstream checks
            pass
        return len(self._files)

    def _unlink_symlinks(self) -> None:
        """A restore that failed leaves no symlink of the archive behind, which might lead out
        of DEST (nothing was written through one; files restored are kept)."""
        for path in self._symlinks:
            with contextlib.suppress(OSError):
                if os.path.islink(path):
                    os.unlink(path)

    def _refuse(self, member: tarfile.TarInfo, why: str) -> BackupFailed:
        return BackupFailed(f"refusing {member.name}: {why}")

    def _clean(self, member: tarfile.TarInfo, name: str) -> str:
        """Given a member and a name from it, return the name relative to DEST."""
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if name.startswith("/") or ".." in parts:
            raise self._refuse(member, f"it would be written outside {self.dest}")
        return "/".join(parts)

    def _inside(self, path: str) -> bool:
        return os.path.commonpath([path, self._root]) == self._root

    def _parents(self, member: tarfile.TarInfo, name: str) -> None:
        """Check (creating the missing ones) every parent of NAME: a real directory inside
        DEST, reached through no symlink from the archive."""
        path = self._root
        linked = False
        for part in name.split("/")[:-1]:
            path = os.path.join(path, part)
            st = _lstat(path)
            if st is None:
                os.mkdir(path)
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            if stat.S_ISLNK(st.st_mode):
                if path in self._symlinks:
                    raise self._refuse(
                        member,
                        "it would be written through the symlink "
                        f"{os.path.relpath(path, self._root)} from the backup",
                    )
                if not self._inside(os.path.realpath(path)):
                    raise self._refuse(member, f"it would be written outside {self.dest}")
                linked = True
            if not os.path.isdir(path):
                raise self._refuse(member, f"{path} is not a directory")
        # Through real directories only, PATH is its own realpath: _root is one, and NAME
        # holds no '..' nor '.'.
        if linked and not self._inside(os.path.realpath(path)):
            raise self._refuse(member, f"it would be written outside {self.dest}")

    def _extract(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise self._refuse(member, "devices, fifos and other special files are never restored")
        name = self._clean(member, member.name)
        if not name:
            if member.isdir():
                return
            raise self._refuse(member, f"it would replace {self.dest} itself")
        self._parents(member, name)
        path = os.path.join(self._root, name)
        existing = _lstat(path)
        if member.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                if existing is not None:
                    self._may_replace(member, path, existing)
                    os.unlink(path)
                os.mkdir(path, 0o700)  # its own mode is set once its content is in
                self._symlinks.discard(path)
            self._dirs.append((path, member))
            return
        if existing is not None:
            self._may_replace(member, path, existing)
        tmp = os.path.join(os.path.dirname(path), f".tiffin-{secrets.token_hex(8)}.partial")
        try:
            if member.issym():
                os.symlink(member.linkname, tmp)
                self._attrs(tmp, member)
            elif member.islnk():
                target = self._clean(member, member.linkname)
                if target not in self._files:
                    raise self._refuse(
                        member,
                        f"its link target {member.linkname} is not a "
                        "file restored from this backup",
                    )
                os.link(os.path.join(self._root, target), tmp, follow_symlinks=False)
            else:
                self._write(tar, member, tmp)
            self._publish(member, tmp, path, replace=existing is not None)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if member.issym():
            self._symlinks.add(path)
        else:
            self._symlinks.discard(path)
            self._files.add(name)

    def _may_replace(self, member: tarfile.TarInfo, path: str, st: os.stat_result) -> None:
        """Raise unless the existing PATH may be replaced: with --overwrite, and not a
        directory."""
        if stat.S_ISDIR(st.st_mode):
            raise self._refuse(member, f"{path} is an existing directory")
        if not self.overwrite:
            raise self._refuse(member, f"{path} exists; add --overwrite to replace it")

    def _write(self, tar: tarfile.TarFile, member: tarfile.TarInfo, tmp: str) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            if member.sparse is not None:
                self._write_pieces(tar, member, fd)
            else:
                src = tar.extractfile(member)
                if src is None:
                    raise self._refuse(member, "its data cannot be read")
                while data := src.read(BLOCK):
                    _write_sparse(fd, data)
            os.ftruncate(fd, member.size)  # a hole at the end still counts in the size
            self._attrs(fd, member)
        finally:
            os.close(fd)

    def _write_pieces(self, tar: tarfile.TarFile, member: tarfile.TarInfo, fd: int) -> None:
        """Write a sparse member's stored pieces at their offsets, leaving the holes between
        them unwritten: the time taken follows the bytes stored, not the size the member
        claims (tarfile's reader would make every hole's zeros, up to 2**63 of them)."""
        assert tar.fileobj is not None
        tar.fileobj.seek(member.offset_data)
        end = 0
        pieces: list[tuple[int, int]] = getattr(member, "sparse", None) or []  # typeshed: int
        for offset, size in pieces:
            if offset < end or size < 0 or offset + size > member.size:
                raise self._refuse(member, "its sparse map is not in order or leads past its size")
            end = offset + size
            os.lseek(fd, offset, os.SEEK_SET)
            while size:
                data = tar.fileobj.read(min(BLOCK, size))
                if not data:
                    raise tarfile.ReadError("unexpected end of data")
                _write_sparse(fd, data)
                size -= len(data)

    def _publish(self, member: tarfile.TarInfo, tmp: str, path: str, replace: bool) -> None:
        if replace:
            os.replace(tmp, path)  # replaces a file or symlink itself, never its target
            return
        try:
            os.link(tmp, path, follow_symlinks=False)
        except FileExistsError:
            raise self._refuse(member, f"{path} exists; add --overwrite to replace it") from None
        except OSError:
            # No hard links on this file system: a plain rename, after one more look.
            if os.path.lexists(path):
                raise self._refuse(
                    member, f"{path} exists; add --overwrite to replace it"
                ) from None
            os.rename(tmp, path)

    def _attrs(self, path: str | int, member: tarfile.TarInfo) -> None:
        """Restore the owner (as root), mode and mtime of PATH, a name or the descriptor of a
        file written, never following a symlink."""
        follow = isinstance(path, int)  # a descriptor is no link, and refuses False
        if os.geteuid() == 0:
            os.chown(path, _uid(member), _gid(member), follow_symlinks=follow)
        if not member.issym():
            os.chmod(path, member.mode & _MODE)  # after chown, which clears setuid bits
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=follow)

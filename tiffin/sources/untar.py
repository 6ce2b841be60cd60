"""Extraction of a tar stream that never writes outside its destination.

Layers, each enough on its own for what it covers: names are cleaned and refused when
absolute or holding '..'; only files, directories, symlinks and hard links to files restored
before are accepted; every parent of every member is opened from DEST down, one component at
a time relative to the descriptor of the one above (openat-style: O_DIRECTORY|O_NOFOLLOW), so
it is a real directory inside DEST, never a symlink restored from the archive (a symlink that
was in DEST before is followed only when it leads inside DEST); every entry is made relative
to its parent's descriptor, a file with O_CREAT|O_EXCL|O_NOFOLLOW, so an existing file or
link is never written through. With --overwrite an existing file is replaced by a rename of
a complete temp file. Checked parents' descriptors are kept for the members that follow, so
a file costs what `tar x` spends on it: create, write, owner, mode, mtime, close.

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
import errno
import os
import secrets
import stat
import tarfile
from collections import OrderedDict
from collections.abc import Callable

from tiffin.engine.streams import BLOCK, Reader
from tiffin.errors import BackupFailed
from tiffin.sources.tarmembers import Members
from tiffin.sources.untarbits import Forward, gid_of, lstat, uid_of, write_sparse
from tiffin.sources.untarsync import Syncer, Writers

DIR_FDS = 64  # descriptors of checked directories kept open
# As tar's data filter: no setuid, setgid or sticky bit, no group or other write.
_MODE = 0o755


FILE_MAX = (1 << 63) - 1  # the largest size a file offset (off_t) holds


class SafeExtractor:
    """Extracts tar streams into DEST (created when missing); OVERWRITE lets an existing
    file or symlink be replaced (a directory never is; directories are merged); DURABLE:
    extract() returns only once every file and directory restored is fsynced
    (tiffin.sources.untarsync)."""

    def __init__(self, dest: str, overwrite: bool = False, durable: bool = False) -> None:
        self.dest = dest
        self.overwrite = overwrite
        self.durable = durable
        self._syncer: Syncer | None = None
        self._writers: Writers | None = None
        self._root = dest
        self._root_fd = -1
        self._fds: OrderedDict[str, int] = OrderedDict()  # checked directory -> descriptor
        self._symlinks: set[str] = set()  # names (relative to DEST) restored as symlinks
        self._files: set[str] = set()
        self._dirs: list[tuple[str, tarfile.TarInfo]] = []
        self._root_user = os.geteuid() == 0

    def extract(self, reader: Reader) -> int:
        """Given a reader of a plain tar, extract it, read READER to its end, and return the
        count of files (and hard links) restored. Owners are restored when run as root,
        modes and mtimes always (directories' after their content). Raise BackupFailed
        naming the first member refused and why, or if the tar is damaged."""
        os.makedirs(self.dest, exist_ok=True)
        self._root = os.path.realpath(self.dest)
        self._root_fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY)
        self._syncer = Syncer() if self.durable else None
        self._writers = Writers() if self.durable else None
        try:
            self._members(reader)
            for name, member in reversed(self._dirs):
                path = os.path.join(self._root, name)
                st = lstat(path)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    self._attrs(path, member)
            syncer = self._syncer
            if syncer is not None:
                self._sync_dirs(syncer)
                self._syncer = None  # finish() stops it either way: nothing to abandon
                syncer.finish()
        finally:
            if self._syncer is not None:
                self._syncer.abandon()
                self._syncer = None
            if self._writers is not None:
                self._writers.close()
                self._writers = None
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            os.close(self._root_fd)
        while reader.read(BLOCK):  # the bytes after the archive's end, for upstream checks
            pass
        return len(self._files)

    def _sync_dirs(self, syncer: Syncer) -> None:
        """Hand every directory restored, DEST and DEST's parent (DEST may have been made
        here) to SYNCER: their entries, the files' names, are then durable too."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        for name in dict.fromkeys(name for name, _ in self._dirs):
            try:
                syncer.sync(os.open(name, flags, dir_fd=self._root_fd), name)
            except (FileNotFoundError, NotADirectoryError):
                continue  # replaced by a later member: that one's parent is synced
            except OSError as exc:
                raise BackupFailed(f"restoring {name} failed: {exc.strerror or exc}") from None
        syncer.sync_dir(self._root_fd, ".")
        parent = os.open(os.path.dirname(self._root) or "/", os.O_RDONLY | os.O_DIRECTORY)
        syncer.sync(parent, "..")

    def _members(self, reader: Reader) -> None:
        try:
            members = Members(Forward(reader))  # tarfile's members, tiffin's headers read fast
            while (member := members.next()) is not None:
                try:
                    self._extract(members.file, member)
                except OSError as exc:
                    raise BackupFailed(
                        f"restoring {member.name} failed: {exc.strerror or exc}"
                    ) from None
            if members.damaged_at is not None:  # tarfile would end there, quietly
                raise BackupFailed(
                    "the backup is not a sound tar stream: a damaged header at byte "
                    f"{members.damaged_at}; the files before it were restored"
                )
        except tarfile.TarError as exc:
            self._unlink_symlinks()
            raise BackupFailed(f"the backup is not a sound tar stream: {exc}") from None
        except BaseException:
            self._unlink_symlinks()
            raise

    def _unlink_symlinks(self) -> None:
        """A restore that failed leaves no symlink of the archive behind, which might lead out
        of DEST (nothing was written through one; files restored are kept)."""
        for name in self._symlinks:
            path = os.path.join(self._root, name)
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

    def _dir_fd(self, member: tarfile.TarInfo, folder: str) -> int:
        """Return the descriptor of FOLDER (relative to DEST, "" for DEST), checked to be a
        real directory inside DEST reached through no symlink from the archive, and made
        (with its missing parents) when missing."""
        if not folder:
            return self._root_fd
        fd = self._fds.get(folder)
        if fd is not None:
            self._fds.move_to_end(folder)
            return fd
        parent, _, part = folder.rpartition("/")
        above = self._dir_fd(member, parent)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        try:
            fd = os.open(part, flags, dir_fd=above)
        except FileNotFoundError:
            os.mkdir(part, dir_fd=above)
            fd = os.open(part, flags, dir_fd=above)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            fd = self._through_link(member, folder, part, above)
        self._fds[folder] = fd
        if len(self._fds) > DIR_FDS:
            os.close(self._fds.popitem(last=False)[1])
        return fd

    def _forget(self, name: str) -> None:
        """NAME was replaced: drop the descriptors kept of it (a symlink followed to a
        directory) and of anything under it."""
        for folder in [f for f in self._fds if f == name or f.startswith(name + "/")]:
            os.close(self._fds.pop(folder))

    def _through_link(self, member: tarfile.TarInfo, folder: str, part: str, above: int) -> int:
        """FOLDER is not a directory: return a descriptor of where it leads if it is a
        symlink that was in DEST before the restore and leads to a directory inside DEST.
        Raise BackupFailed otherwise."""
        st = os.stat(part, dir_fd=above, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            if folder in self._symlinks:
                raise self._refuse(
                    member, f"it would be written through the symlink {folder} from the backup"
                )
            if not self._inside(os.path.realpath(os.path.join(self._root, folder))):
                raise self._refuse(member, f"it would be written outside {self.dest}")
            with contextlib.suppress(OSError):
                return os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=above)
        raise self._refuse(member, f"{os.path.join(self._root, folder)} is not a directory")

    def _extract(self, tar: Forward, member: tarfile.TarInfo) -> None:
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise self._refuse(member, "devices, fifos and other special files are never restored")
        name = self._clean(member, member.name)
        if not name:
            if member.isdir():
                return
            raise self._refuse(member, f"it would replace {self.dest} itself")
        folder, _, base = name.rpartition("/")
        at = self._dir_fd(member, folder)
        path = os.path.join(self._root, name)
        if member.isdir():
            existing = _lstat_at(base, at)
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                if existing is not None:
                    self._may_replace(member, path, existing)
                    os.unlink(base, dir_fd=at)
                    self._forget(name)
                os.mkdir(base, 0o700, dir_fd=at)  # its own mode is set once its content is in
                self._symlinks.discard(name)
            self._dirs.append((name, member))
            return
        if member.islnk():
            target = self._clean(member, member.linkname)
            if target not in self._files:
                raise self._refuse(
                    member,
                    f"its link target {member.linkname} is not a file restored from this backup",
                )
        if not self._create(tar, member, base, at, target if member.islnk() else ""):
            existing = _lstat_at(base, at)
            if existing is not None:  # (else gone meanwhile: as if it had never been there)
                self._may_replace(member, path, existing)
            self._replace(tar, member, base, at, target if member.islnk() else "")
            self._forget(name)
        if member.issym():
            self._symlinks.add(name)
        else:
            self._symlinks.discard(name)
            self._files.add(name)

    def _create(
        self, tar: Forward, member: tarfile.TarInfo, base: str, at: int, target: str
    ) -> bool:
        """Make MEMBER as BASE in the directory AT, which must not exist: return False if
        something is there already. A file left half written is removed."""
        try:
            if member.issym():
                os.symlink(member.linkname, base, dir_fd=at)
                try:
                    self._attrs_at(base, at, member)
                except BaseException:
                    os.unlink(base, dir_fd=at)
                    raise
            elif member.islnk():
                os.link(
                    target, base, src_dir_fd=self._root_fd, dst_dir_fd=at, follow_symlinks=False
                )
            else:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(base, flags, 0o600, dir_fd=at)
                try:
                    written = self._write(tar, member, fd)
                except BaseException:
                    os.close(fd)
                    with contextlib.suppress(OSError):
                        os.unlink(base, dir_fd=at)
                    raise
                if self._syncer is not None:
                    self._syncer.sync(fd, self._clean(member, member.name), written)
                else:
                    os.close(fd)
        except FileExistsError:
            return False
        return True

    def _replace(
        self, tar: Forward, member: tarfile.TarInfo, base: str, at: int, target: str
    ) -> None:
        """Replace the file or symlink BASE in the directory AT by MEMBER, made under a temp
        name first: the existing one is replaced itself, never written through."""
        tmp = f".tiffin-{secrets.token_hex(8)}.partial"
        try:
            if not self._create(tar, member, tmp, at, target):
                raise FileExistsError(errno.EEXIST, "a temp name is taken", tmp)
            os.replace(tmp, base, src_dir_fd=at, dst_dir_fd=at)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=at)

    def _may_replace(self, member: tarfile.TarInfo, path: str, st: os.stat_result) -> None:
        """Raise unless the existing PATH may be replaced: with --overwrite, and not a
        directory."""
        if stat.S_ISDIR(st.st_mode):
            raise self._refuse(member, f"{path} is an existing directory")
        if not self.overwrite:
            raise self._refuse(member, f"{path} exists; add --overwrite to replace it")

    def _write(self, tar: Forward, member: tarfile.TarInfo, fd: int) -> Callable[[], None] | None:
        """Write a regular member's data into FD, read straight from the archive (tarfile's
        own file object would copy every byte once more), and set its attributes. With
        Writers (durable), return the function that waits for the writes, then sets them."""
        if member.size > FILE_MAX:  # past any file offset: lseek and ftruncate would overflow
            raise self._refuse(member, "it claims more bytes than any file can hold")
        tar.seek(member.offset_data)
        if self._writers is not None and member.sparse is None:
            written = self._writers.write_file(tar, fd, member.size)

            def finish() -> None:
                written()
                self._attrs(fd, member)

            return finish
        if member.sparse is not None:
            self._write_pieces(tar, member, fd)
            os.ftruncate(fd, member.size)  # a hole at the end still counts in the size
        else:
            left = member.size
            holes = False
            while left:
                data = tar.read(min(BLOCK, left))
                if not data:
                    raise tarfile.ReadError("unexpected end of data")
                holes = write_sparse(fd, data)  # only the last block's end matters
                left -= len(data)
            if holes:
                os.ftruncate(fd, member.size)  # a hole at the end still counts in the size
        self._attrs(fd, member)
        return None

    def _write_pieces(self, tar: Forward, member: tarfile.TarInfo, fd: int) -> None:
        """Write a sparse member's stored pieces at their offsets, leaving the holes between
        them unwritten: the time taken follows the bytes stored, not the size the member
        claims (tarfile's reader would make every hole's zeros, up to 2**63 of them)."""
        end = 0
        pieces: list[tuple[int, int]] = getattr(member, "sparse", None) or []  # typeshed: int
        for offset, size in pieces:
            if offset < end or size < 0 or offset + size > member.size:
                raise self._refuse(member, "its sparse map is not in order or leads past its size")
            end = offset + size
            os.lseek(fd, offset, os.SEEK_SET)
            while size:
                data = tar.read(min(BLOCK, size))
                if not data:
                    raise tarfile.ReadError("unexpected end of data")
                write_sparse(fd, data)
                size -= len(data)

    def _attrs(self, path: str | int, member: tarfile.TarInfo) -> None:
        """Restore the owner (as root), mode and mtime of PATH, a name or the descriptor of a
        file written, never following a symlink."""
        follow = isinstance(path, int)  # a descriptor is no link, and refuses False
        if self._root_user:
            os.chown(path, uid_of(member), gid_of(member), follow_symlinks=follow)
        if not member.issym():
            os.chmod(path, member.mode & _MODE)  # after chown, which clears setuid bits
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=follow)

    def _attrs_at(self, base: str, at: int, member: tarfile.TarInfo) -> None:
        """Restore the owner (as root) and mtime of the symlink BASE in the directory AT."""
        if self._root_user:
            os.chown(base, uid_of(member), gid_of(member), dir_fd=at, follow_symlinks=False)
        os.utime(base, (member.mtime, member.mtime), dir_fd=at, follow_symlinks=False)


def _lstat_at(base: str, at: int) -> os.stat_result | None:
    try:
        return os.stat(base, dir_fd=at, follow_symlinks=False)
    except FileNotFoundError:
        return None

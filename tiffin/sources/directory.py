"""A data directory as a tar stream (data/...), and its extraction that never leaves DIR.

The tar is written by a thread into a bounded channel that the reader drains, so memory
holds a few MiB whatever the size, and nothing is written to disk.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import grp
import os
import pwd
import queue
import stat
import tarfile
import threading
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import IO, Any

from tiffin.errors import BackupFailed, UsageError
from tiffin.job import RestoreJob, SourceSpec
from tiffin.sources.untar import SafeExtractor
from tiffin.streams import BLOCK, IterReader, buffered

DEPTH = 4
_END = object()


def excluded(rel: str, is_dir: bool, patterns: tuple[str, ...]) -> bool:
    """Given a path relative to the directory, whether it is a directory, and --exclude
    globs, return True if a glob matches the relative path or the basename. A glob ending
    in '/' matches directories only. As with fnmatch, '*' also matches '/'."""
    base = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        if pattern.endswith("/"):
            if not is_dir:
                continue
            pattern = pattern.rstrip("/")
        if fnmatchcase(rel, pattern) or fnmatchcase(base, pattern):
            return True
    return False


class _Stopped(Exception):
    """The reader was closed: the tar thread unwinds."""


class _Channel:
    """A bounded byte channel: the tar thread writes blocks, the reader iterates over them.
    An error handed over by finish() is raised by every later next(), never a clean EOF."""

    def __init__(self) -> None:
        self._q: queue.Queue[Any] = queue.Queue(maxsize=DEPTH)
        self._buf = bytearray()
        self.stop = threading.Event()
        self._error: BaseException | None = None
        self._done = False

    def write(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) >= BLOCK:
            self._put(bytes(self._buf))
            self._buf.clear()

    def _put(self, item: Any) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(queue.Full):
                self._q.put(item, timeout=0.2)
                return
        raise _Stopped

    def finish(self, error: BaseException | None) -> None:
        with contextlib.suppress(_Stopped):
            if error is None and self._buf:
                self._put(bytes(self._buf))
            self._put(_END if error is None else error)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._error is not None:
            raise self._error
        if self._done:
            raise StopIteration
        item = self._q.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._error = item
            raise item
        return bytes(item)


class DirectorySource:
    """A directory (--dir, default ~/data) as an uncompressed PAX tar whose entries start
    with the directory's own name: data, data/sub, data/sub/file. Symlinks are stored as
    links (never followed), hard links as links to the first name stored; modes, mtimes and
    owners are kept. Sockets, devices and fifos are skipped with a warning.

    --exclude GLOB (repeatable) is matched with fnmatch against each path relative to the
    directory (sub/file.log) and against its basename (file.log); '*' also matches '/', and a
    glob ending in '/' matches directories only. An excluded directory is not descended."""

    what = "data"

    def __init__(self, spec: SourceSpec) -> None:
        self.root = os.path.abspath(os.path.expanduser(spec.dir or "~/data"))
        self.top = os.path.basename(self.root.rstrip("/")) or "root"
        self.excludes = tuple(spec.excludes)
        self._warnings: list[str] = []
        self._hardlinks: dict[tuple[int, int], str] = {}
        self._thread: threading.Thread | None = None
        self._chan = _Channel()

    def _walk(self, warn: list[str]) -> Iterator[tuple[str, str, os.stat_result]]:
        """Yield (path, rel, lstat) in tar order: each directory before its sorted entries."""
        try:
            top = os.stat(self.root)  # --dir itself may be a symlink to the directory
        except FileNotFoundError:
            raise BackupFailed(f"the directory {self.root} does not exist: "
                               "give the folder to back up with --dir DIR") from None
        if not stat.S_ISDIR(top.st_mode):
            raise BackupFailed(f"{self.root} is not a directory: "
                               "give the folder to back up with --dir DIR")
        yield self.root, "", top
        stack = [self._list(self.root, "", warn)]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
                continue
            path, rel = item
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                warn.append(f"{path} vanished during the backup and was skipped")
                continue
            except OSError as exc:
                raise BackupFailed(f"cannot read {path}: {exc.strerror}") from None
            if excluded(rel, stat.S_ISDIR(st.st_mode), self.excludes):
                continue
            yield path, rel, st
            if stat.S_ISDIR(st.st_mode):
                stack.append(self._list(path, rel, warn))

    @staticmethod
    def _list(path: str, rel: str, warn: list[str]) -> Iterator[tuple[str, str]]:
        try:
            names = sorted(os.listdir(path))
        except FileNotFoundError:
            warn.append(f"{path} vanished during the backup and was skipped")
            names = []
        except OSError as exc:
            raise BackupFailed(f"cannot list the directory {path}: {exc.strerror}") from None
        return ((os.path.join(path, n), f"{rel}/{n}" if rel else n) for n in names)

    def prepare(self) -> dict[str, Any]:
        """Return {"dir", "files", "bytes", "dirs", "symlinks"} from a quick walk with the same
        exclusions. Raise BackupFailed if the directory is missing or cannot be listed."""
        files = size = dirs = links = 0
        for _path, _rel, st in self._walk([]):
            if stat.S_ISREG(st.st_mode):
                files += 1
                size += st.st_size
            dirs += stat.S_ISDIR(st.st_mode)
            links += stat.S_ISLNK(st.st_mode)
        return {"dir": self.root, "files": files, "bytes": size, "dirs": dirs, "symlinks": links}

    def open(self) -> IO[bytes]:
        """Start the tar thread and return a reader of the tar. The reader raises
        BackupFailed, instead of returning EOF, if a file or directory cannot be read."""
        self._thread = threading.Thread(target=self._produce, daemon=True, name="tiffin-tar")
        self._thread.start()
        return buffered(IterReader(self._chan, on_close=self._close))

    def _close(self) -> None:
        self._chan.stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def warnings(self) -> list[str]:
        """Return the files skipped or changed during the backup, one sentence each."""
        return list(self._warnings)

    def _produce(self) -> None:
        try:
            offset = 0
            for path, rel, st in self._walk(self._warnings):
                offset += self._add(path, f"{self.top}/{rel}" if rel else self.top, st)
            end = 2 * tarfile.BLOCKSIZE
            end += -(offset + end) % tarfile.RECORDSIZE
            self._chan.write(tarfile.NUL * end)
            self._chan.finish(None)
        except _Stopped:
            return
        except OSError as exc:
            self._chan.finish(BackupFailed(f"cannot read {exc.filename}: {exc.strerror}"))
        except BaseException as exc:  # handed to the reader's thread
            self._chan.finish(exc)

    def _header(self, arc: str, st: os.stat_result, kind: bytes, link: str = "") -> int:
        info = tarfile.TarInfo(arc)
        info.type, info.linkname = kind, link
        info.mode, info.mtime = stat.S_IMODE(st.st_mode), st.st_mtime
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname, info.gname = _uname(st.st_uid), _gname(st.st_gid)
        info.size = st.st_size if kind == tarfile.REGTYPE else 0
        buf = info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
        self._chan.write(buf)
        return len(buf)

    def _add(self, path: str, arc: str, st: os.stat_result) -> int:
        """Write one entry; return the bytes written."""
        if stat.S_ISDIR(st.st_mode):
            return self._header(arc, st, tarfile.DIRTYPE)
        if stat.S_ISLNK(st.st_mode):
            try:
                return self._header(arc, st, tarfile.SYMTYPE, os.readlink(path))
            except FileNotFoundError:
                self._warnings.append(f"{path} vanished during the backup and was skipped")
                return 0
        if stat.S_ISREG(st.st_mode):
            return self._add_file(path, arc)
        self._warnings.append(f"{path} is a socket, device or fifo: skipped")
        return 0

    def _add_file(self, path: str, arc: str) -> int:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            self._warnings.append(f"{path} vanished during the backup and was skipped")
            return 0
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # replaced by a symlink since it was listed
                self._warnings.append(f"{path} changed during the backup and was skipped")
                return 0
            raise BackupFailed(f"cannot read {path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb", buffering=0) as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self._warnings.append(f"{path} changed during the backup and was skipped")
                return 0
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._hardlinks:
                return self._header(arc, st, tarfile.LNKTYPE, self._hardlinks[key])
            written = self._header(arc, st, tarfile.REGTYPE)
            left = st.st_size
            try:
                while left:
                    data = f.read(min(BLOCK, left))
                    if not data:
                        break
                    self._chan.write(data)
                    left -= len(data)
                grew = bool(f.read(1))
            except OSError as exc:
                raise BackupFailed(f"cannot read {path}: {exc.strerror}") from None
            if left:
                self._chan.write(tarfile.NUL * left)
                self._warnings.append(f"{path} shrank while it was read: its copy is padded "
                                      "with zeros to its former size")
            elif grew or os.fstat(fd).st_mtime_ns != st.st_mtime_ns:
                self._warnings.append(f"{path} changed while it was read: its copy may mix "
                                      "old and new content")
            pad = -st.st_size % tarfile.BLOCKSIZE
            self._chan.write(tarfile.NUL * pad)
            if st.st_nlink > 1:
                self._hardlinks[key] = arc
            return written + st.st_size + pad


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



class DirectoryLoader:
    """restore --into dir --dir DIR: extracts as tar would (DIR/data/...) but never writes
    outside DIR (see tiffin.sources.untar for the layers of checks). An existing file is
    replaced only with --overwrite; existing directories are merged."""

    def __init__(self, job: RestoreJob) -> None:
        if not job.source.dir:
            raise UsageError("restore --into dir needs the destination: add --dir DIR")
        self.dest = os.path.abspath(os.path.expanduser(job.source.dir))
        self.overwrite = job.overwrite

    def check(self, details: dict[str, Any]) -> None:
        """Given the backup's source details, return None if DIR can take it. Raise
        BackupFailed if DIR exists and is not a directory."""
        if os.path.lexists(self.dest) and not os.path.isdir(self.dest):
            raise BackupFailed(f"{self.dest} exists and is not a directory")

    def load(self, reader: IO[bytes], details: dict[str, Any]) -> str:
        """Given a reader of a tar, extract it into DIR and return "restored N files into
        DIR". Raise BackupFailed naming the first member refused and why."""
        self.check(details)
        n = SafeExtractor(self.dest, self.overwrite).extract(reader)
        return f"restored {n} file{'' if n == 1 else 's'} into {self.dest}"

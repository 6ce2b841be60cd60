"""A data directory as a tar stream (data/...), and its extraction that never leaves DIR.

The tar is written by a thread into a bounded channel that the reader drains, so memory
holds a few MiB whatever the size, and nothing is written to disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import stat
import tarfile
import threading
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any

from tiffin.engine.streams import BLOCK, AheadReader, Reader
from tiffin.errors import BackupFailed, UsageError
from tiffin.job import RestoreJob, SourceSpec
from tiffin.sources.tarheader import _ZEROS, _header
from tiffin.sources.untar import SafeExtractor

DEPTH = 4
SMALL = 32 << 10  # a file up to this size is put in the block in one piece (_Channel.entry)
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
    """A bounded byte channel: the tar thread fills a block of BLOCK bytes in place (write(),
    zeros(), read_from() straight from a file) and hands a copy over each time it is full;
    the reader iterates over the copies. An error handed over by finish() is raised by every
    later next(), never a clean EOF. `written` counts the bytes put in."""

    def __init__(self) -> None:
        self._q: queue.Queue[Any] = queue.Queue(maxsize=DEPTH)
        self._buf = bytearray(BLOCK)
        self._view = memoryview(self._buf)
        self._pos = self.written = 0
        self.stop = threading.Event()
        self._error: BaseException | None = None
        self._done = False

    def _room(self) -> int:
        """Hand the block over if it is full; return the bytes left in it (never 0)."""
        if self._pos == BLOCK:
            self._put(bytes(self._buf))
            self._pos = 0
        return BLOCK - self._pos

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = min(len(view), self._room())
            self._view[self._pos : self._pos + n] = view[:n]
            self._pos += n
            view = view[n:]
        self.written += len(data)

    def zeros(self, n: int) -> None:
        while n:
            k = min(n, len(_ZEROS))
            self.write(_ZEROS[:k])
            n -= k

    def read_from(self, fd: int, size: int) -> tuple[int, bool]:
        """Read up to SIZE bytes of FD into the channel; return the count read (less if the
        file ended first) and whether FD held more than SIZE bytes (one byte is read past
        SIZE, in the same system call as the last ones, to know)."""
        probe = bytearray(1)
        left = size
        while True:
            n = min(left, self._room())
            into = [self._view[self._pos : self._pos + n]]
            got = os.readv(fd, [*into, probe] if n == left else into)
            grew = got > n
            got = min(got, n)
            self._pos += got
            self.written += got
            left -= got
            if grew or not got or not left:
                return size - left, grew

    def entry(self, header: bytes, fd: int, size: int) -> tuple[int, bool] | None:
        """Put a small file's whole entry in the block if it has room: HEADER, SIZE bytes of
        FD (one read, one byte past SIZE asked for too, as read_from does), the zeros that
        pad it to 512 (and those for any bytes the file no longer had). Return what
        read_from returns, or None (and put nothing) if the block has no room for it."""
        start = self._pos + len(header)
        end = start + size + -size % 512
        if size > SMALL or end >= BLOCK:
            return None
        self._buf[self._pos : start] = header
        at, left, grew = start, size, False
        while True:
            got = os.readv(fd, [self._view[at : at + left + 1]])
            grew = got > left
            got = min(got, left)
            at += got
            left -= got
            if grew or not got or not left:
                break
        self._view[at:end] = _ZEROS[: end - at]  # the padding, over the byte read past SIZE
        self.written += end - self._pos
        self._pos = end
        return size - left, grew

    def _put(self, item: Any) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(queue.Full):
                self._q.put(item, timeout=0.2)
                return
        raise _Stopped

    def finish(self, error: BaseException | None) -> None:
        with contextlib.suppress(_Stopped):
            if error is None and self._pos:
                self._put(bytes(self._view[: self._pos]))
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
        self._counts = dict.fromkeys(("files", "bytes", "dirs", "symlinks"), 0)

    def _top(self) -> os.stat_result:
        """Return the stat of --dir (which may be a symlink to the directory). Raise
        BackupFailed if it is missing or not a directory."""
        try:
            top = os.stat(self.root)
        except FileNotFoundError:
            raise BackupFailed(
                f"the directory {self.root} does not exist: "
                "give the folder to back up with --dir DIR"
            ) from None
        if not stat.S_ISDIR(top.st_mode):
            raise BackupFailed(
                f"{self.root} is not a directory: give the folder to back up with --dir DIR"
            )
        return top

    def _walk(self, warn: list[str]) -> Iterator[tuple[str, str, os.stat_result | None]]:
        """Yield (path, rel, lstat) in tar order: each directory before its sorted entries.
        The lstat of a regular file is None: the file's own fstat, once opened, is the one
        its entry is made from (the directory's listing already said what kind it is)."""
        yield self.root, "", self._top()
        stack = [self._list(self.root, "", warn)]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
                continue
            entry, rel = item
            st: os.stat_result | None = None
            try:
                if entry.is_file(follow_symlinks=False):
                    is_dir = False
                else:
                    st = entry.stat(follow_symlinks=False)
                    is_dir = stat.S_ISDIR(st.st_mode)
            except FileNotFoundError:
                warn.append(f"{entry.path} vanished during the backup and was skipped")
                continue
            except OSError as exc:
                raise BackupFailed(f"cannot read {entry.path}: {exc.strerror}") from None
            if self.excludes and excluded(rel, is_dir, self.excludes):
                continue
            yield entry.path, rel, st
            if is_dir:
                stack.append(self._list(entry.path, rel, warn))

    @staticmethod
    def _list(path: str, rel: str, warn: list[str]) -> Iterator[tuple[os.DirEntry[str], str]]:
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            warn.append(f"{path} vanished during the backup and was skipped")
            entries = []
        except OSError as exc:
            raise BackupFailed(f"cannot list the directory {path}: {exc.strerror}") from None
        return ((e, f"{rel}/{e.name}" if rel else e.name) for e in entries)

    def prepare(self) -> dict[str, Any]:
        """Return {"dir"}. Raise BackupFailed if the directory is missing or no directory.
        What it holds is counted as it is stored (see finish())."""
        self._top()
        return {"dir": self.root}

    def open(self) -> Reader:
        """Start the tar thread and return a reader of the tar. The reader raises
        BackupFailed, instead of returning EOF, if a file or directory cannot be read."""
        self._thread = threading.Thread(target=self._produce, daemon=True, name="tiffin-tar")
        self._thread.start()
        return AheadReader(self._chan, on_close=self._close)

    def _close(self) -> None:
        self._chan.stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def finish(self) -> dict[str, Any]:
        """Return {"files", "bytes", "dirs", "symlinks"}: what the tar holds."""
        return dict(self._counts)

    def warnings(self) -> list[str]:
        """Return the files skipped or changed during the backup, one sentence each."""
        return list(self._warnings)

    def _produce(self) -> None:
        try:
            for path, rel, st in self._walk(self._warnings):
                self._add(path, f"{self.top}/{rel}" if rel else self.top, st)
            end = 2 * tarfile.BLOCKSIZE
            self._chan.zeros(end + -(self._chan.written + end) % tarfile.RECORDSIZE)
            self._chan.finish(None)
        except _Stopped:
            return
        except OSError as exc:
            self._chan.finish(BackupFailed(f"cannot read {exc.filename}: {exc.strerror}"))
        except BaseException as exc:  # handed to the reader's thread
            self._chan.finish(exc)

    def _add(self, path: str, arc: str, st: os.stat_result | None) -> None:
        """Write one entry (ST None: a regular file, as its directory listed it)."""
        if st is None or stat.S_ISREG(st.st_mode):
            self._add_file(path, arc)
        elif stat.S_ISDIR(st.st_mode):
            self._chan.write(_header(arc, st, tarfile.DIRTYPE))
            self._counts["dirs"] += 1
        elif stat.S_ISLNK(st.st_mode):
            try:
                self._chan.write(_header(arc, st, tarfile.SYMTYPE, os.readlink(path)))
                self._counts["symlinks"] += 1
            except FileNotFoundError:
                self._warnings.append(f"{path} vanished during the backup and was skipped")
        else:
            self._warnings.append(f"{path} is a socket, device or fifo: skipped")

    def _add_file(self, path: str, arc: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            self._warnings.append(f"{path} vanished during the backup and was skipped")
            return
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # replaced by a symlink since it was listed
                self._warnings.append(f"{path} changed during the backup and was skipped")
                return
            raise BackupFailed(f"cannot read {path}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self._warnings.append(f"{path} changed during the backup and was skipped")
                return
            key = (st.st_dev, st.st_ino)
            self._counts["files"] += 1
            self._counts["bytes"] += st.st_size
            if st.st_nlink > 1 and key in self._hardlinks:
                self._chan.write(_header(arc, st, tarfile.LNKTYPE, self._hardlinks[key]))
                return
            header = _header(arc, st, tarfile.REGTYPE)
            try:
                whole = self._chan.entry(header, fd, st.st_size)
                if whole is None:
                    self._chan.write(header)
                    whole = self._chan.read_from(fd, st.st_size)
                    self._chan.zeros(st.st_size - whole[0] + -st.st_size % tarfile.BLOCKSIZE)
            except OSError as exc:
                raise BackupFailed(f"cannot read {path}: {exc.strerror}") from None
            got, grew = whole
            if got < st.st_size:  # its copy was padded with zeros to SIZE
                self._warnings.append(
                    f"{path} shrank while it was read: its copy is padded "
                    "with zeros to its former size"
                )
            elif grew or os.fstat(fd).st_mtime_ns != st.st_mtime_ns:
                self._warnings.append(
                    f"{path} changed while it was read: its copy may mix old and new content"
                )
            if st.st_nlink > 1:
                self._hardlinks[key] = arc
        finally:
            os.close(fd)


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

    def load(self, reader: Reader, details: dict[str, Any]) -> str:
        """Given a reader of a tar, extract it into DIR and return "restored N files into
        DIR". Raise BackupFailed naming the first member refused and why."""
        self.check(details)
        n = SafeExtractor(self.dest, self.overwrite).extract(reader)
        return f"restored {n} file{'' if n == 1 else 's'} into {self.dest}"

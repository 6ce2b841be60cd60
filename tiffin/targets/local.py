"""A folder on this machine: temp file, size check, fsync, no-overwrite publish, dir fsync."""

from __future__ import annotations

import errno
import logging
import os

from tiffin.catalog.naming import PARTIAL_SUFFIX
from tiffin.engine import safefile
from tiffin.engine.streams import BLOCK, Reader
from tiffin.errors import AlreadyExists, NotFound, TargetError
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets.base import Entry, Stored

WRITEBACK = 2 << 20  # bytes written between two requests to start writing them to disk
DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", None)  # Linux and the BSDs; not macOS

log = logging.getLogger("tiffin")


def _explain(exc: OSError, path: str) -> TargetError:
    if exc.errno == errno.ENOSPC:
        return TargetError(f"the disk holding {path} is full")
    if exc.errno == errno.EDQUOT:
        return TargetError(f"the disk quota for {path} is exceeded")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return TargetError(f"no permission to write in {path}")
    return TargetError(f"cannot write in {path}: {exc.strerror or exc}")


class LocalTarget:
    def __init__(self, url: TargetURL, options: TargetOptions) -> None:
        self.dir = url.path
        self.mode = options.mode

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def put(self, name: str, reader: Reader, replace: bool = False) -> Stored:
        final = self._path(name)
        temp = final + PARTIAL_SUFFIX
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise _explain(exc, self.dir) from None
        if not replace and os.path.lexists(final):
            raise AlreadyExists(f"{final} exists already; tiffin never overwrites a backup")
        try:
            fd = safefile.create(temp, self.mode)
        except safefile.Planted as exc:
            raise AlreadyExists(f"{exc} (or is another run writing {name}?)") from None
        except OSError as exc:
            raise _explain(exc, self.dir) from None
        try:
            written = flushed = 0
            with os.fdopen(fd, "wb", buffering=0, closefd=True) as out:
                while True:
                    data = reader.read(BLOCK)
                    if not data:
                        break
                    try:
                        view = memoryview(data)
                        while view:
                            n = out.write(view)
                            view = view[n or 0 :]
                            written += n or 0
                        if DONTNEED is not None and written - flushed >= WRITEBACK:
                            # Start writing what came so far to disk now, not at the fsync,
                            # and let the kernel drop it from its cache once written: a
                            # backup is not read again soon, the database's pages are.
                            os.posix_fadvise(fd, flushed, written - flushed, DONTNEED)
                            flushed = written
                    except OSError as exc:
                        raise _explain(exc, self.dir) from None
                try:
                    os.fsync(out.fileno())
                    stored = os.fstat(out.fileno()).st_size
                except OSError as exc:
                    raise _explain(exc, self.dir) from None
            if stored != written:
                raise TargetError(f"{temp} holds {stored} bytes, {written} were written")
            try:
                if replace:
                    os.replace(temp, final)
                else:  # link() refuses an existing name, where rename() would replace it.
                    os.link(temp, final)
                    os.unlink(temp)
            except FileExistsError:
                raise AlreadyExists(f"{final} appeared while writing; not overwritten") from None
            except OSError as exc:
                raise _explain(exc, self.dir) from None
            self._fsync_dir()
            return Stored(stored)
        except BaseException:
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove %s: %s", temp, exc)
            raise

    def open(self, name: str) -> Reader:
        try:
            return open(self._path(name), "rb", buffering=BLOCK)
        except FileNotFoundError:
            raise NotFound(f"no backup named {name} in {self.dir}") from None
        except OSError as exc:
            raise TargetError(f"cannot read {self._path(name)}: {exc.strerror}") from None

    def list(self) -> list[Entry]:
        entries: list[Entry] = []
        try:
            it = os.scandir(self.dir)
        except FileNotFoundError:
            return entries
        except OSError as exc:
            raise TargetError(f"cannot list {self.dir}: {exc.strerror}") from None
        with it:
            for e in it:
                if not e.is_file(follow_symlinks=False):
                    continue
                st = e.stat(follow_symlinks=False)
                partial = e.name.endswith(PARTIAL_SUFFIX)
                name = e.name[: -len(PARTIAL_SUFFIX)] if partial else e.name
                entries.append(Entry(name, st.st_size, st.st_mtime, partial))
        return entries

    def stat(self, name: str) -> Entry | None:
        try:
            st = os.stat(self._path(name), follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:  # e.g. a file where the folder should be
            raise TargetError(f"cannot use {self.dir} as a folder: {exc.strerror}") from None
        return Entry(name, st.st_size, st.st_mtime)

    def remove(self, name: str) -> None:
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TargetError(f"cannot remove {self._path(name)}: {exc.strerror}") from None

    def close(self) -> None:
        pass

"""Durable extraction (see tiffin.sources.untar): every file restored is fsynced by a pool of
threads while the next ones are written, and every directory once its entries are in, so
that a restore reports success only once its bytes are on disk.

One fsync after another at the end (as `sync` or a server's start-up sync does) makes the
disk wait for each file in turn after the last byte is decoded; handed to SYNC_THREADS
threads as each file is closed, the disk writes the first files back while the decoder is
still at work on the later ones, several requests in flight at a time (fsync lets go of the
GIL). At most PENDING files wait their turn, each holding one descriptor: the writer waits
for the disk when it runs that far ahead.
"""

from __future__ import annotations

import os
import queue
import threading

from tiffin.errors import BackupFailed

SYNC_THREADS = 4
PENDING = 64


class Syncer:
    """Takes descriptors of files written (sync()) and of directories (sync_dir()), fsyncs
    and closes each in a thread of its own; finish() waits for all of them."""

    def __init__(self, threads: int = SYNC_THREADS) -> None:
        self._q: queue.Queue[tuple[int, str] | None] = queue.Queue(maxsize=PENDING)
        self._failed: tuple[str, OSError] | None = None
        self._abandon = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, daemon=True, name=f"tiffin-sync-{i}")
            for i in range(threads)
        ]
        for t in self._threads:
            t.start()

    def _work(self) -> None:
        while (item := self._q.get()) is not None:
            fd, name = item
            try:
                if not self._abandon.is_set() and self._failed is None:
                    os.fsync(fd)
            except OSError as exc:
                if self._failed is None:
                    self._failed = (name, exc)
            finally:
                os.close(fd)

    def sync(self, fd: int, name: str) -> None:
        """Hand over FD (of the file NAME, relative to the destination): it is fsynced, then
        closed. Raise BackupFailed if an earlier one failed (FD is closed then)."""
        if self._failed is not None:
            os.close(fd)
            self.check()
        self._q.put((fd, name))

    def sync_dir(self, dir_fd: int, name: str) -> None:
        """Fsync the directory NAME once: a duplicate of DIR_FD is handed over."""
        self.sync(os.dup(dir_fd), name or ".")

    def check(self) -> None:
        """Raise BackupFailed naming the first file whose fsync failed, and why."""
        if self._failed is not None:
            name, exc = self._failed
            raise BackupFailed(f"restoring {name} failed: {exc.strerror or exc}")

    def finish(self) -> None:
        """Wait until every descriptor handed over is fsynced and closed; raise BackupFailed
        naming the first file whose fsync failed."""
        self._stop()
        self.check()

    def abandon(self) -> None:
        """Close every descriptor handed over without waiting for the disk (the restore has
        failed: nothing of it is reported restored)."""
        self._abandon.set()
        self._stop()

    def _stop(self) -> None:
        for _ in self._threads:
            self._q.put(None)
        for t in self._threads:
            t.join()
        self._threads = []

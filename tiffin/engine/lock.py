"""One run at a time per job: a lock per LABEL, WHAT, source and target, held for the whole
backup. Backups of different sources (two folders, two servers) never block each other.

The lock is an flock(2) on ~/.cache/tiffin/locks/HASH.lock, HASH the sha256 of the label,
the source kind, the source's identity key (tiffin/sources/identity.py) and the target's URL
without its password (its folder included). The kernel
releases an flock when its holder ends, however it ends (SIGKILL, a crash, a reboot), so a
stale lock never blocks the next run and the file itself is never removed: removing a lock
file while another run waits on it would let a third one take a lock on a new file.

The folder is ~/.cache (with ~ the $HOME of the run), never $XDG_RUNTIME_DIR or
$XDG_CACHE_HOME: cron sets neither, so a run started by cron and one started by hand in a
session would otherwise look for each other in different places and never meet.

A second run of the same job does not wait: it fails at once (exit 1) naming the run that
holds the lock, which is what cron needs (a run that waits would pile up behind a hung one).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import time
from types import TracebackType

from tiffin.engine import safefile
from tiffin.errors import BackupFailed

log = logging.getLogger("tiffin")


class Busy(BackupFailed):
    """Another run holds the lock of this job."""


def lock_dir() -> str:
    """Return the folder of tiffin's lock files: ~/.cache/tiffin/locks."""
    return os.path.join(os.path.expanduser("~"), ".cache", "tiffin", "locks")


def lock_path(label: str, what: str, target: str, source: str = "") -> str:
    """Given a label, a source kind, a target URL without password and the source's identity
    key, return its lock file."""
    key = "\0".join((label, what, target, source)).encode("utf-8", "surrogateescape")
    return os.path.join(lock_dir(), hashlib.sha256(key).hexdigest()[:32] + ".lock")


def claim(target: str, name: str) -> Lock | None:
    """Given a target URL without password and a backup name, take the claim on that name
    for this run (an flock, as for hold()); return it, or None if another run on this
    machine holds it: two runs that start in the same second never pick the same name."""
    key = "\0".join(("name", target, name)).encode("utf-8", "surrogateescape")
    path = os.path.join(lock_dir(), hashlib.sha256(key).hexdigest()[:32] + ".name.lock")
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError:
        return Lock(None, path)  # no guard, as for hold(); the target still never overwrites
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return Lock(fd, path)


def _holder(fd: int) -> str:
    """Return the pid written in a lock file by its holder, or '?' if none is there yet."""
    try:
        first = os.pread(fd, 64, 0).split(b"\n", 1)[0].strip()
    except OSError:
        return "?"
    return first.decode("ascii", "replace") if first.isdigit() else "?"


class Lock:
    """The lock of one job, taken by hold() and released by close() or the end of a `with`."""

    def __init__(self, fd: int | None, path: str) -> None:
        self.fd = fd
        self.path = path

    def close(self) -> None:
        """Release the lock; idempotent."""
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> Lock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def hold(label: str, what: str, target: str, source: str = "") -> Lock:
    """Given a job's label, source kind, target URL without password and source identity
    key, take its lock and return it. Raise Busy, naming the other run's pid, if another run
    holds it. If the lock file cannot be made at all (a read-only home), log why and return
    an empty Lock: a backup matters more than the guard against a concurrent one."""
    path = lock_path(label, what, target, source)
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = safefile.open_lock(path)  # Planted (a link, a fifo ...) is not passed over
    except OSError as exc:
        log.warning(
            "cannot make the lock file %s (%s): this run does not guard against a concurrent one",
            path,
            exc.strerror or exc,
        )
        return Lock(None, path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        pid = _holder(fd)
        if pid == "?":  # taken a moment ago: its holder is writing its pid
            time.sleep(0.1)
            pid = _holder(fd)
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            log.warning("cannot lock %s (%s): no guard against a concurrent run", path, exc)
            return Lock(None, path)
        raise Busy(
            f"another tiffin run is backing up {label} ({what}) to {target} (pid {pid}) from "
            "the same source; this one did not start, so that the two never interleave"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{label}\n{what}\n{target}\n".encode(), 0)
    except OSError as exc:  # the pid is only shown to a second run: not worth failing for
        log.debug("cannot write the pid into %s: %s", path, exc)
    return Lock(fd, path)

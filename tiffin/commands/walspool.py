"""What wal-push and wal-fetch keep between PostgreSQL's calls, in the server's own pg_wal
folder (the folder of %p), so that no setting is needed and the data directory's life bounds
theirs: pg_basebackup copies no subfolder of pg_wal but archive_status, and PostgreSQL looks
only at names of WAL files there.

- `pg_wal/tiffin.pushed/NAME.ok`: NAME was pushed ahead of PostgreSQL's call for it, stored
  and checked; it holds the archive's key and the file's (size, inode, mtime) when read. The
  call for NAME that finds a record with the same key and the same file exits 0 at once and
  removes the record (a later call for the same NAME checks the archive itself).
- `pg_wal/tiffin.fetched/NAME`: NAME fetched ahead and checked against its sha256, with
  `KEY` naming the archive; the call for NAME renames it to %p.
"""

from __future__ import annotations

import fcntl
import os
import time

from tiffin.commands.walask import FETCHED

# Loaded on every call PostgreSQL makes, before anything else: no typing, json, re or enum
# (each costs milliseconds of every call); the names below are for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

PUSHED, KEY, LOCK = "tiffin.pushed", "KEY", "LOCK"
RECORD, FAIL, PLAN = ".ok", ".fail", "PLAN"
POLL = 0.005  # seconds between two looks at the spool while a helper works ahead


def _record_text(key: str, file: list[int]) -> str:
    return key + "\n" + " ".join(map(str, file)) + "\n"


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def identity(st: os.stat_result) -> list[int]:
    """Given a WAL file's stat, return what a record compares: size, inode, mtime."""
    return [st.st_size, st.st_ino, st.st_mtime_ns]


class _Spool:
    dir: str

    def lock(self) -> int | None:
        """Take the spool's lock (held by whoever works ahead: a helper process while it
        lives); return its descriptor, or None if another process holds it or it cannot be
        made (then there is no spool to share)."""
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            fd = os.open(os.path.join(self.dir, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return fd

    def mark_failed(self, name: str) -> None:
        """Note that the helper gave up on NAME, so that the call for it does not wait."""
        try:
            os.close(os.open(os.path.join(self.dir, name + FAIL), os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError:
            pass

    def failed(self, name: str) -> bool:
        return os.path.exists(os.path.join(self.dir, name + FAIL))

    def forget_failures(self) -> None:
        try:
            names = os.listdir(self.dir)
        except OSError:
            return
        for entry in names:
            if entry.endswith(FAIL):
                _unlink(os.path.join(self.dir, entry))


def settle(
    spool: _Spool, done: Callable[[], bool], waiting: Callable[[], bool], wait: float
) -> tuple[bool, int | None]:
    """Given a spool, DONE (whether this call's work was done ahead; it takes it) and
    WAITING (whether the helper holding the lock is to do it), wait for it up to WAIT
    seconds. Return (True, None) once DONE; (False, the lock's descriptor) when no helper
    holds it (this call now leads); or (False, None) when the helper is not to do it or the
    wait ran out (this call does its own work, alone)."""
    deadline = time.monotonic() + wait
    while True:
        if done():
            return True, None
        fd = spool.lock()
        if fd is not None:
            if done():  # the helper finished it as it let go
                os.close(fd)
                return True, None
            return False, fd
        if not waiting() or time.monotonic() > deadline:
            return False, None
        time.sleep(POLL)


def detach(work: Callable[[], None], lock: int) -> None:
    """Run WORK in a helper process of its own, detached from PostgreSQL (a session of its
    own, standard streams on /dev/null, no other descriptor), which holds the spool's LOCK
    while it lives; return at once. LOCK is closed here. Call it before any thread starts
    or connection opens: only the calling thread lives on in the helper."""
    try:
        pid = os.fork()
    except OSError:
        os.close(lock)
        return
    if pid:
        os.close(lock)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        return
    code = 1
    try:
        os.setsid()
        if os.fork():
            os._exit(0)  # the helper is the grandchild: init reaps it
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, lock)
        os.closerange(lock + 1, 65536)
        work()
        code = 0
    finally:
        os._exit(code)


class PushSpool(_Spool):
    """The records of files pushed ahead, beside the WAL file PostgreSQL names."""

    def __init__(self, walpath: str, key: str) -> None:
        self.wal_dir = os.path.dirname(walpath) or "."
        self.dir = os.path.join(self.wal_dir, PUSHED)
        self.key = key

    def take(self, name: str, st: os.stat_result) -> bool:
        """Return whether NAME, as it is now (ST), was pushed ahead to this archive; the
        record is removed either way."""
        path = os.path.join(self.dir, name + RECORD)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read(1 << 16)
        except (OSError, ValueError):
            return False
        _unlink(path)
        return text == _record_text(self.key, identity(st))

    def record(self, name: str, before: os.stat_result) -> None:
        """Note that NAME, as it was when read (BEFORE), is stored and checked, if it has not
        changed since. Best effort: a record that cannot be written costs a later check."""
        try:
            if identity(os.stat(os.path.join(self.wal_dir, name))) != identity(before):
                return
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            text = _record_text(self.key, identity(before))
            temp = os.path.join(self.dir, f".{name}.{os.getpid()}.tmp")
            with open(temp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(temp, os.path.join(self.dir, name + RECORD))
        except OSError:
            pass

    def ready(self, skip: str, most: int) -> list[str]:
        """Return up to MOST names that PostgreSQL has marked ready to archive (other than
        SKIP and those with a record), in the order it archives them: history files first,
        then by name. A folder that cannot be read gives none. The names are as found: not
        yet checked to be WAL files' names."""
        if most <= 0:
            return []
        try:
            names = os.listdir(os.path.join(self.wal_dir, "archive_status"))
        except OSError:
            return []
        try:
            done = set(os.listdir(self.dir))
        except OSError:
            done = set()
        found = []
        for entry in names:
            if not entry.endswith(".ready"):
                continue
            name = entry[: -len(".ready")]
            if name != skip and name + RECORD not in done:
                found.append(name)
        found.sort(key=lambda n: (not n.endswith(".history"), n))
        return found[:most]


class FetchSpool(_Spool):
    """Files fetched ahead and checked, beside the path PostgreSQL restores into."""

    def __init__(self, dest: str, key: str) -> None:
        self.dir = os.path.join(os.path.dirname(dest) or ".", FETCHED)
        self.key = key

    def _ours(self) -> bool:
        try:
            with open(os.path.join(self.dir, KEY), encoding="utf-8") as f:
                return f.read(4096) == self.key
        except OSError:
            return False

    def usable(self) -> bool:
        """Make the spool ready for this archive (emptied if it held another's); return False
        if it cannot be made (then nothing is fetched ahead). Only the lock's holder calls it."""
        if self._ours():
            return True
        self.clear()
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            with open(os.path.join(self.dir, KEY), "w", encoding="utf-8") as f:
                f.write(self.key)
        except OSError:
            return False
        return True

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def take(self, name: str, dest: str) -> bool:
        """Move NAME, fetched ahead for this archive, to DEST; return False if it is not here."""
        if not name.isalnum() and not name.replace(".", "").isalnum():
            return False
        if not os.path.exists(self.path(name)) or not self._ours():
            return False
        try:
            os.replace(self.path(name), dest)
        except OSError:
            return False
        return True

    def holds(self, name: str) -> bool:
        return os.path.exists(self.path(name))

    def count(self) -> int:
        """Return how many fetched files wait in the spool."""
        try:
            return sum(1 for n in os.listdir(self.dir) if len(n) == 24 and n.isalnum())
        except OSError:
            return 0

    def plan(self, names: list[str]) -> None:
        """Say which files the helper is fetching: the calls for them wait for it."""
        temp = os.path.join(self.dir, f".{PLAN}.{os.getpid()}")
        with open(temp, "w", encoding="utf-8") as f:
            f.write("\n".join(names))
        os.replace(temp, os.path.join(self.dir, PLAN))

    def planned(self, name: str) -> bool:
        """Return whether the helper is to fetch NAME and has not given up on it."""
        try:
            with open(os.path.join(self.dir, PLAN), encoding="utf-8") as f:
                names = f.read(1 << 20).split("\n")
        except OSError:
            return False
        return name in names and not self.failed(name)

    def prune(self, keep: set[str]) -> None:
        """Remove the files fetched ahead that are not in KEEP (left by a recovery that went
        another way: the end of the archive, another timeline)."""
        try:
            names = os.listdir(self.dir)
        except OSError:
            return
        for name in names:
            if name not in keep and name != LOCK:
                _unlink(self.path(name))

    def clear(self) -> None:
        """Remove every file of the spool but its lock (which its holder may be holding)."""
        self.prune(set())

"""Local files that tiffin creates, never written through a link someone planted.

Whoever can write in a folder tiffin writes to can plant a symlink, a hard link or a fifo
under a name tiffin is about to use (NAME.partial, a lock, a secrets file's temp) so that
the write lands on another file. Every such file is made here: created new with O_EXCL |
O_NOFOLLOW (nothing of that name may exist, not even a dangling link), or, for a lock that
lives on between runs, opened without following a link and refused unless it is a plain
file with one name, owned by this user.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat

from tiffin.errors import BackupFailed

NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Planted(BackupFailed):
    """A link, fifo or other file stands where tiffin was to create one of its own."""


def create(path: str, mode: int = 0o600) -> int:
    """Create PATH, which must not exist in any form, and return a descriptor writing it, with
    MODE from its first byte. Raise Planted if something is there already, OSError otherwise."""
    try:
        fd = os.open(path, NEW, mode)
    except FileExistsError:
        raise Planted(
            f"{path} exists already ({_what(path)}); tiffin creates it new and never writes "
            "through what stands there: remove it"
        ) from None
    try:
        os.fchmod(fd, mode)  # the umask took bits away
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_lock(path: str) -> int:
    """Open (creating it if need be) the lock file PATH for reading and writing, and return
    its descriptor. Raise Planted if PATH is a link, a hard-linked file, a fifo or other
    special file, or another user's; OSError if it cannot be opened otherwise."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Planted(f"the lock file {path} is a symbolic link: remove it") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.geteuid():
        os.close(fd)
        raise Planted(
            f"the lock file {path} is not a plain file of this user's with one name "
            f"({_what(path)}): remove it"
        )
    return fd


def temp_beside(path: str) -> str:
    """Return a name for a temporary file beside PATH that no one can guess beforehand."""
    return f"{path}.{secrets.token_hex(6)}.tmp"


def write_new(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write DATA as the file PATH, replacing what is there (a link itself, never its target),
    atomically: through a fresh temp file beside it, created as create() does."""
    temp = temp_beside(path)
    fd = create(temp, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)


def _what(path: str) -> str:
    try:
        st = os.lstat(path)
    except OSError:
        return "gone again"
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    if stat.S_ISFIFO(st.st_mode):
        return "a fifo"
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        return f"a file with {st.st_nlink} hard links"
    if stat.S_ISREG(st.st_mode):
        return "a file"
    return "not a plain file"

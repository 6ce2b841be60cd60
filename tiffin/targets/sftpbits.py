"""Small helpers of the SFTP target around paramiko: failure reasons, listing entries, and a
prefetch thread that keeps its errors to itself."""

from __future__ import annotations

import paramiko

from tiffin.targets.base import Entry

_FAILURES = (OSError, EOFError, paramiko.SSHException)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _entry(name: str, attrs: paramiko.SFTPAttributes, partial: bool = False) -> Entry:
    mtime = float(attrs.st_mtime) if attrs.st_mtime is not None else None
    return Entry(name, attrs.st_size or 0, mtime, partial)


def _quiet_prefetch(handle: paramiko.SFTPFile) -> None:
    """paramiko's prefetch thread lets a broken connection escape as a traceback on stderr.
    Keep the error on the file instead, where paramiko's next read raises it."""
    run = getattr(handle, "_prefetch_thread")  # noqa: B009 (private, not in the stubs)

    def guarded(*args: object) -> None:
        try:
            run(*args)
        except _FAILURES as exc:
            setattr(handle, "_saved_exception", exc)  # noqa: B010

    setattr(handle, "_prefetch_thread", guarded)  # noqa: B010

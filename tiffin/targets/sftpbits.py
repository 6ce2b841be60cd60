"""Small helpers of the SFTP target around paramiko: failure reasons, listing entries, and a
prefetch thread that keeps its errors to itself."""

from __future__ import annotations

from typing import Protocol

import paramiko
from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY, SFTPError

from tiffin.targets.base import Entry

_FAILURES = (OSError, EOFError, paramiko.SSHException)


class Link(Protocol):
    """What carries an SFTP session: paramiko's transport, or OpenSSH's ssh on two pipes."""

    def alive(self) -> bool:
        """Return True while the session can still carry requests."""

    def why_broken(self) -> str | None:
        """Return why the session broke, in words that follow a colon, if the link knows."""

    def openssh(self) -> bool:
        """Return True if the server is known to be OpenSSH."""

    def close(self, abort: bool = False) -> None:
        """End the link; with ABORT at once, waiting on nothing. Idempotent."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _write_size(sftp: paramiko.SFTPClient, link: Link, smallest: int, largest: int) -> int:
    """Return the bytes an SFTP write request may carry: what the server's limits@openssh.com
    extension allows, at most LARGEST; LARGEST if the link knows the server is OpenSSH; else
    SMALLEST, which every server takes."""
    try:
        request = getattr(sftp, "_request")  # noqa: B009 (private, not in the stubs)
        kind, msg = request(CMD_EXTENDED, "limits@openssh.com")
        if kind == CMD_EXTENDED_REPLY:
            _packet, _read, write, _handles = (msg.get_int64() for _ in range(4))
            return max(smallest, min(largest, write)) if write else largest
    except (*_FAILURES, SFTPError):
        if not link.alive():
            raise
    return largest if link.openssh() else smallest


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

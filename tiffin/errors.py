"""Every error tiffin raises on purpose; its str() is the sentence the user reads."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2


class TiffinError(Exception):
    """Base of tiffin's own errors: str() is one sentence naming what to fix. `exit_status` is
    what cli.main returns for it; `subject`, if set, names what failed ("Backup NAME")."""

    exit_status = ExitStatus.FAILED
    subject: str | None = None


class UsageError(TiffinError):
    """The command line or config is malformed; found before anything is contacted."""

    exit_status = ExitStatus.USAGE


class BackupFailed(TiffinError):
    """The work failed: a server refused, a stream broke, a check did not hold."""


class Failed(BackupFailed):
    """The work on one named thing failed. SUBJECT names it as the user reads it ("Backup
    NAME", "Drill of NAME"); str() is the reason; failure_line() makes the two one sentence."""

    def __init__(self, subject: str, reason: object) -> None:
        self.subject = subject
        super().__init__(str(reason))


def failure_line(subject: str, reason: object) -> str:
    """Given what failed ("Backup NAME") and why, return the line the user reads."""
    return f"{subject} FAILED: {reason}"


class TargetError(BackupFailed):
    """The target (folder, FTP, SSH, S3) refused or failed."""


class AlreadyExists(TargetError):
    """A backup of that name is already stored; it is never overwritten."""


class NotFound(TargetError):
    """No stored object of that name."""


class IntegrityError(BackupFailed):
    """Stored bytes do not match what the manifest says."""


class ToolFailed(BackupFailed):
    """A child process (dump tool, client) exited non-zero or was killed."""

    def __init__(self, tool: str, returncode: int, stderr_tail: str) -> None:
        self.tool = tool
        self.returncode = returncode
        self.stderr_tail = stderr_tail.strip()
        if returncode < 0:
            how = f"was killed by signal {-returncode}"
        else:
            how = f"exited with status {returncode}"
        msg = f"{tool} {how}"
        if self.stderr_tail:
            msg += ": " + self.stderr_tail
        super().__init__(msg)


class OutputClosed(TiffinError):
    """The reader of standard output went away (`| head`): end quietly, as a Unix filter does."""


def os_error_text(exc: OSError) -> str:
    """Given an OSError nobody closer to it explained, return one sentence for the user."""
    what = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot use {exc.filename}: {what}" if exc.filename else what

"""What an option is, and the commands options belong to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "BACKUP",
    "BACKUP_CMDS",
    "DB_CMDS",
    "DRILL",
    "LIST",
    "PRUNE",
    "RESTORE",
    "RUN",
    "SCHEDULE",
    "STATUS",
    "TARGET_CMDS",
    "UNSCHEDULE",
    "VERIFY",
    "WAL_CMDS",
    "WAL_FETCH",
    "WAL_PUSH",
    "WATCH_CMDS",
    "Opt",
]

BACKUP = "backup"
RESTORE = "restore"
LIST = "list"
VERIFY = "verify"
PRUNE = "prune"
DRILL = "drill"
SCHEDULE = "schedule"
RUN = "run"
UNSCHEDULE = "unschedule"
STATUS = "status"
WAL_PUSH = "wal-push"  # PostgreSQL's archive_command and restore_command (SPEC §6)
WAL_FETCH = "wal-fetch"
WAL_CMDS = frozenset({WAL_PUSH, WAL_FETCH})

TARGET_CMDS = frozenset({BACKUP, RESTORE, LIST, VERIFY, PRUNE, DRILL, SCHEDULE, STATUS})
DB_CMDS = frozenset({BACKUP, RESTORE, DRILL, SCHEDULE})
BACKUP_CMDS = frozenset({BACKUP, SCHEDULE})
# What a run tells Prometheus and Apprise (SPEC §7): wal-push and binlog add their names here.
WATCH_CMDS = BACKUP_CMDS | {DRILL}


@dataclass(frozen=True)
class Opt:
    flag: str
    help: str
    commands: frozenset[str]
    kind: str = "str"  # str, int, float, size, flag, list, mode
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    span: tuple[float, float] | None = None  # int, float, size, mode: the lowest and highest
    default: Any = None  # what a job takes when the option is not given: stated here only
    config: bool = True  # False: the command line's alone (--debug, --json): no TOML key
    everywhere: bool = False  # taken by every command

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def full_help(self) -> str:
        """The help text with the default, as --help shows it."""
        if self.default is None or self.default is False:
            return self.help
        shown = format(self.default, "04o") if self.kind == "mode" else self.default
        if self.kind == "size":
            shown = f"{self.default >> 30}GiB"
        return f"{self.help} (default {shown})"

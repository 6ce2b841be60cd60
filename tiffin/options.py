"""One table of options: it feeds argparse, the TOML config and --help alike.

A value travels as the option's `dest` (the TOML key, e.g. keep_daily = 7) and becomes part
of a frozen Job only through the builders at the end of this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tiffin.codecs import COMPRESSORS
from tiffin.errors import UsageError
from tiffin.job import BackupJob, SourceSpec, TargetOptions
from tiffin.numbers import number
from tiffin.numbers import parse_size as parse_size  # where callers have found it
from tiffin.sources import INTO, SOURCES, spoken

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


OPTIONS: tuple[Opt, ...] = (
    # the command line's alone: no TOML key, never carried onto a scheduled line
    Opt(
        "--debug",
        "show tracebacks and every command run",
        frozenset(),
        "flag",
        config=False,
        everywhere=True,
    ),
    Opt("--json", "print JSON", frozenset({LIST, STATUS}), "flag", config=False),
    Opt(
        "--all",
        "every backup (verify) or every scheduled job (unschedule)",
        frozenset({VERIFY, UNSCHEDULE}),
        "flag",
        config=False,
    ),
    Opt(
        "--dry-run",
        "say what would be deleted, delete nothing",
        frozenset({PRUNE}),
        "flag",
        config=False,
    ),
    Opt(
        "--list",
        "show tiffin's scheduled jobs: id, when, command",
        frozenset({SCHEDULE}),
        "flag",
        config=False,
    ),
    Opt(
        "--systemd",
        "write a systemd user timer instead of a crontab line",
        frozenset({SCHEDULE}),
        "flag",
        config=False,
    ),
    # the source and its connection
    Opt("--host", "database server host (default: the client's own default)", DB_CMDS),
    Opt("--port", "database server port", DB_CMDS, "int", span=(1, 65535)),
    Opt("--user", "database user", DB_CMDS),
    Opt("--socket", "database server's Unix socket", DB_CMDS),
    Opt(
        "--password-file",
        "file holding the database password (else TIFFIN_DB_PASSWORD, ~/.my.cnf, ~/.pgpass)",
        DB_CMDS,
        metavar="FILE",
    ),
    Opt(
        "--database",
        "a database to dump or restore into (repeatable; default: all)",
        DB_CMDS,
        "list",
        metavar="NAME",
    ),
    Opt(
        "--consistency",
        "MySQL: auto (single-transaction if all InnoDB, else lock), single-transaction or lock",
        BACKUP_CMDS,
        choices=("auto", "single-transaction", "lock"),
        default=SourceSpec.consistency,
    ),
    Opt(
        "--replica",
        "MySQL: dump from a replica, recording the source's coordinates",
        BACKUP_CMDS,
        "flag",
    ),
    Opt(
        "--dir",
        "data: the directory to back up, or to restore into",
        DB_CMDS,
        metavar="DIR",
        default=SourceSpec.dir,
    ),
    Opt(
        "--exclude",
        "data: skip paths matching GLOB (repeatable)",
        BACKUP_CMDS,
        "list",
        metavar="GLOB",
    ),
    Opt("--file", "sqlite: the database file", DB_CMDS, metavar="PATH"),
    Opt(
        "--physical",
        "pgsql, mysql: a physical backup of the whole server (pg_basebackup, mariabackup)",
        BACKUP_CMDS | {DRILL},
        "flag",
    ),
    # what is stored
    Opt(
        "--label",
        "the name's label (default: $HOSTNAME, else the host name)",
        BACKUP_CMDS | {LIST, PRUNE, VERIFY, DRILL, STATUS},
    ),
    Opt(
        "--what",
        f"only backups of this WHAT: {', '.join(SOURCES)} (sql: mysql and pgsql)",
        frozenset({LIST, PRUNE}),
    ),
    Opt(
        "--compress",
        "gzip, zstd or none",
        BACKUP_CMDS,
        choices=tuple(COMPRESSORS),
        default=BackupJob.compress,
    ),
    Opt("--compress-level", "compression level", BACKUP_CMDS, "int", metavar="N", span=(0, 22)),
    Opt(
        "--compress-threads",
        "compression threads (default: all cores)",
        BACKUP_CMDS,
        "int",
        metavar="N",
        span=(0, 256),
    ),
    Opt(
        "--encrypt-to",
        "encrypt with age to this recipient (repeatable)",
        BACKUP_CMDS,
        "list",
        metavar="RECIPIENT",
    ),
    Opt(
        "--chunk-size",
        "s3multi: chunk size, e.g. 4G",
        BACKUP_CMDS,
        "size",
        metavar="SIZE",
        span=(1, 5 << 40),  # an S3 object is at most 5 TiB
        default=TargetOptions.chunk_size,
    ),
    Opt(
        "--mode",
        "local: file mode of new backups",
        BACKUP_CMDS,
        "mode",
        span=(0, 0o777),  # permission bits only: never setuid, setgid or sticky
        default=TargetOptions.mode,
    ),
    # reporting
    Opt(
        "--min-ratio",
        "warn when a backup is under this fraction of the previous one",
        BACKUP_CMDS,
        "float",
        metavar="R",
        span=(0, 1),
        default=BackupJob.min_ratio,
    ),
    Opt(
        "--email",
        "send the report to ADDR (repeatable)",
        BACKUP_CMDS | {DRILL},
        "list",
        metavar="ADDR",
    ),
    Opt(
        "--ping-url",
        "healthchecks-style URL pinged on start, success and failure",
        BACKUP_CMDS | {DRILL},
        metavar="URL",
    ),
    Opt(
        "--metrics-file",
        "write Prometheus metrics to PATH for node_exporter's textfile collector (a .prom file)",
        WATCH_CMDS | {RUN},
        metavar="PATH",
    ),
    Opt(
        "--pushgateway",
        "push the metrics to this Prometheus Pushgateway (else TIFFIN_PUSHGATEWAY_URL)",
        WATCH_CMDS,
        metavar="URL",
    ),
    Opt(
        "--notify",
        "send the report through Apprise to URL, e.g. ntfy://ntfy.sh/TOPIC (repeatable; "
        "else TIFFIN_NOTIFY)",
        WATCH_CMDS,
        "list",
        metavar="URL",
    ),
    Opt("--quiet", "print nothing but the report", TARGET_CMDS | {RUN}, "flag"),
    # scheduling and config jobs
    Opt(
        "--at",
        "schedule: run every day at HH:MM (default: a random minute and hour)",
        frozenset({SCHEDULE}),
        metavar="HH:MM",
    ),
    Opt(
        "--cron",
        "schedule: run at this cron time, e.g. '30 3 * * 1-5'",
        frozenset({SCHEDULE}),
        metavar="EXPR",
    ),
    Opt(
        "--config",
        "the TOML file of jobs (default ~/.config/tiffin/tiffin.toml)",
        frozenset({SCHEDULE, RUN, STATUS}),
        metavar="FILE",
    ),
    Opt(
        "--env-file",
        "load KEY=VALUE lines into the environment first (a scheduled job's secrets)",
        BACKUP_CMDS | {RUN},
        "list",
        metavar="FILE",
    ),
    # retention
    Opt(
        "--keep-last",
        "keep the N newest backups",
        BACKUP_CMDS | {PRUNE},
        "int",
        metavar="N",
        span=(0, 1_000_000),
    ),
    Opt(
        "--keep-hourly",
        "keep the newest backup of each of the last N hours",
        BACKUP_CMDS | {PRUNE},
        "int",
        metavar="N",
        span=(0, 1_000_000),
    ),
    Opt(
        "--keep-daily",
        "keep the newest backup of each of the last N days",
        BACKUP_CMDS | {PRUNE},
        "int",
        metavar="N",
        span=(0, 1_000_000),
    ),
    Opt(
        "--keep-weekly",
        "keep the newest backup of each of the last N weeks",
        BACKUP_CMDS | {PRUNE},
        "int",
        metavar="N",
        span=(0, 1_000_000),
    ),
    Opt(
        "--keep-monthly",
        "keep the newest backup of each of the last N months",
        BACKUP_CMDS | {PRUNE},
        "int",
        metavar="N",
        span=(0, 1_000_000),
    ),
    Opt(
        "--keep-yearly",
        "keep the newest backup of each of the last N years",
        BACKUP_CMDS | {PRUNE},
        "int",
        metavar="N",
        span=(0, 1_000_000),
    ),
    # the target
    Opt(
        "--ssh-key",
        "SSH private key (default: the agent, then ~/.ssh/id_*)",
        TARGET_CMDS,
        metavar="FILE",
    ),
    Opt(
        "--endpoint-url",
        "S3-compatible endpoint (else AWS_ENDPOINT_URL or ~/.s3cfg)",
        TARGET_CMDS,
        metavar="URL",
    ),
    Opt(
        "--insecure",
        "FTPS/SMTP: do not verify the server's certificate",
        TARGET_CMDS | {RUN},
        "flag",
    ),
    Opt(
        "--timeout",
        "seconds without progress before giving up",
        TARGET_CMDS,
        "float",
        metavar="SECONDS",
        span=(0.01, 86400),
        default=TargetOptions.timeout,
    ),
    # restore
    Opt(
        "--into",
        f"load into {spoken(INTO)}",
        frozenset({RESTORE, DRILL}),
        choices=tuple(INTO),
    ),
    Opt(
        "--output",
        "write the plain dump to FILE (- for stdout)",
        frozenset({RESTORE}),
        metavar="FILE",
    ),
    Opt(
        "--identity",
        "age identity file that decrypts",
        frozenset({RESTORE, VERIFY, DRILL}),
        metavar="FILE",
    ),
    Opt("--force", "restore a backup that has no manifest", frozenset({RESTORE}), "flag"),
    Opt(
        "--source-id",
        "latest: the newest backup of this source only (its source_id in `list --json`)",
        frozenset({RESTORE, DRILL}),
        metavar="ID",
    ),
    Opt("--overwrite", "replace existing files", frozenset({RESTORE}), "flag"),
    Opt(
        "--to-time",
        'recover to this time, "YYYY-MM-DD HH:MM:SS UTC" (default: the end of the archive)',
        frozenset({RESTORE, DRILL}),
        metavar="TIME",
    ),
    Opt(
        "--to-lsn",
        "pgsql: recover to this WAL position, e.g. 0/3000060",
        frozenset({RESTORE, DRILL}),
        metavar="LSN",
    ),
    Opt(
        "--owner",
        "pgdata, mysqldata: the OS user who owns the restored data directory",
        frozenset({RESTORE}),
        metavar="USER",
    ),
)
STATUS_OPTIONS: tuple[Opt, ...] = (  # status (SPEC §7) and schedule --kubernetes (§8)
    Opt(
        "--max-age",
        "status: a job whose newest complete backup is older is STALE (default 26h)",
        frozenset({STATUS}),
        "duration",
        metavar="DURATION",
        config=False,
        span=(1, 3660 * 86400),
    ),
    Opt(
        "--html",
        "status: also write the page of tables and charts to FILE",
        frozenset({STATUS}),
        metavar="FILE",
        config=False,
    ),
    Opt(
        "--kubernetes",
        "schedule: print a Kubernetes CronJob, change nothing here",
        frozenset({SCHEDULE}),
        "flag",
        config=False,
    ),
    Opt(
        "--namespace",
        "schedule --kubernetes: the namespace (default: kubectl's)",
        frozenset({SCHEDULE}),
        metavar="NS",
        config=False,
    ),
    Opt(
        "--secret",
        "schedule --kubernetes: the Secret holding the job's secrets (default tiffin-JOB_ID)",
        frozenset({SCHEDULE}),
        metavar="NAME",
        config=False,
    ),
    Opt(
        "--image",
        "schedule --kubernetes: tiffin's container image",
        frozenset({SCHEDULE}),
        metavar="IMG",
        config=False,
    ),
)
OPTIONS += STATUS_OPTIONS
BY_DEST = {o.dest: o for o in OPTIONS}
# The command line's own flags (--debug, --json, ...): never a config key or a scheduled flag.
EDGE_ONLY = frozenset(o.dest for o in OPTIONS if not o.config)


def default(dest: str) -> Any:
    """Given an option's dest, return its default (None: the option has none)."""
    return BY_DEST[dest].default


NUMERIC = frozenset({"int", "float", "size", "mode", "duration"})
# Every number an option takes has its range in the table: none is typed without one.
assert all(o.span for o in OPTIONS if o.kind in NUMERIC), "a numeric option lacks its span"


def _shown(kind: str, x: float) -> str:
    """Given an option's kind and one end of its span, return it as the user writes it."""
    if kind == "mode":
        return oct(int(x))
    if kind == "duration":
        return f"{x:g}s" if x < 86400 else f"{x / 86400:g}d"
    return f"{x:,}"


def coerce(opt: Opt, value: Any) -> Any:
    """Given an option and a raw value (argparse string or TOML value), return the typed value,
    numbers within the option's span. Raise UsageError with the option's name if it does not
    fit."""
    try:
        if opt.kind == "flag":
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            return value
        if opt.kind == "list":
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in items):
                raise ValueError("expected a string or a list of strings")
            if any("\x00" in v for v in items):
                raise ValueError("may not contain a NUL character")
            return tuple(items)
        if opt.span is not None:
            n = number(opt.kind, value)
            low, high = opt.span
            if not low <= n <= high:  # also nan, which compares false with everything
                shown = [_shown(opt.kind, x) for x in (low, high)]
                raise ValueError(f"expected a number from {shown[0]} to {shown[1]}")
            return n
        if not isinstance(value, str):
            raise ValueError("expected a string")
        if "\x00" in value:  # no file name, host or argument can hold one
            raise ValueError("may not contain a NUL character")
        if opt.choices and value not in opt.choices:
            raise ValueError(f"expected one of {', '.join(opt.choices)}")
        return value
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{opt.flag} {value!r}: {exc}") from None


# ---------------------------------------------------------------- builders

"""The rows of the option table: every flag, the commands that take it, its kind and default."""

from __future__ import annotations

from tiffin.codecs import COMPRESSORS
from tiffin.job import BackupJob, SourceSpec, TargetOptions
from tiffin.options.binlog import with_binlog
from tiffin.options.opt import (
    BACKUP_CMDS,
    DB_CMDS,
    DRILL,
    LIST,
    PRUNE,
    RESTORE,
    RUN,
    SCHEDULE,
    STATUS,
    TARGET_CMDS,
    UNSCHEDULE,
    VERIFY,
    WAL_CMDS,
    WAL_PUSH,
    WATCH_CMDS,
    Opt,
)
from tiffin.sources import INTO, TYPED, spoken

KEEP = (0, 1_000_000)  # a --keep-* count
KEEPERS = BACKUP_CMDS | {PRUNE}

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
        BACKUP_CMDS | {LIST, PRUNE, VERIFY, DRILL, STATUS} | WAL_CMDS,
    ),
    Opt(
        "--what",
        f"only backups of this WHAT: {', '.join(TYPED)} (sql: mysql and pgsql)",
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
        WATCH_CMDS | {RUN, WAL_PUSH},
        metavar="PATH",
    ),
    Opt(
        "--pushgateway",
        "push the metrics to this Prometheus Pushgateway (else TIFFIN_PUSHGATEWAY_URL)",
        WATCH_CMDS | {WAL_PUSH},
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
        BACKUP_CMDS | {RUN} | WAL_CMDS,
        "list",
        metavar="FILE",
    ),
    # retention
    Opt("--keep-last", "keep the N newest backups", KEEPERS, "int", metavar="N", span=KEEP),
    *(
        Opt(
            f"--keep-{every}",
            f"keep the newest backup of each of the last N {unit}s",
            KEEPERS,
            "int",
            metavar="N",
            span=KEEP,
        )
        for every, unit in (
            ("hourly", "hour"),
            ("daily", "day"),
            ("weekly", "week"),
            ("monthly", "month"),
            ("yearly", "year"),
        )
    ),
    # the target
    Opt(
        "--ssh-key",
        "SSH private key (default: the agent, then ~/.ssh/id_*)",
        TARGET_CMDS | WAL_CMDS,
        metavar="FILE",
    ),
    Opt(
        "--endpoint-url",
        "S3-compatible endpoint (else AWS_ENDPOINT_URL or ~/.s3cfg)",
        TARGET_CMDS | WAL_CMDS,
        metavar="URL",
    ),
    Opt(
        "--insecure",
        "FTPS/SMTP: do not verify the server's certificate",
        TARGET_CMDS | {RUN} | WAL_CMDS,
        "flag",
    ),
    Opt(
        "--timeout",
        "seconds without progress before giving up",
        TARGET_CMDS | WAL_CMDS,
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
OPTIONS += (  # speed (issue 17): what a database backup records for drill
    Opt(
        "--counts",
        "mysql/pgsql: row counts drill checks: exact (small tables), estimate (the server's), off",
        BACKUP_CMDS,
        choices=("exact", "estimate", "off"),
        default=SourceSpec.counts,
    ),
)

# binlog (SPEC §6): its rows, and binlog added to the rows it shares (tiffin/options/binlog.py)
OPTIONS = with_binlog(OPTIONS)

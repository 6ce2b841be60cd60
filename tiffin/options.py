"""One table of options: it feeds argparse, the TOML config and --help alike.

A value travels as the option's `dest` (the TOML key, e.g. keep_daily = 7) and becomes part
of a frozen Job only through the builders at the end of this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tiffin.codecs.age import check_recipients
from tiffin.errors import UsageError
from tiffin.job import (
    WHATS,
    BackupJob,
    DBConn,
    RestoreJob,
    Retention,
    SourceSpec,
    TargetOptions,
    TargetURL,
    looks_like_url,
    parse_target,
    parse_url,
)
from tiffin.naming import check_label, check_name, default_label
from tiffin.numbers import number
from tiffin.numbers import parse_size as parse_size  # where callers have found it

BACKUP = "backup"
RESTORE = "restore"
LIST = "list"
VERIFY = "verify"
PRUNE = "prune"
DRILL = "drill"
SCHEDULE = "schedule"
RUN = "run"

TARGET_CMDS = frozenset({BACKUP, RESTORE, LIST, VERIFY, PRUNE, DRILL, SCHEDULE})
DB_CMDS = frozenset({BACKUP, RESTORE, DRILL, SCHEDULE})
BACKUP_CMDS = frozenset({BACKUP, SCHEDULE})


@dataclass(frozen=True)
class Opt:
    flag: str
    help: str
    commands: frozenset[str]
    kind: str = "str"  # str, int, float, size, flag, list, mode
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    span: tuple[float, float] | None = None  # int, float, size, mode: the lowest and highest

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: tuple[Opt, ...] = (
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
    ),
    Opt(
        "--replica",
        "MySQL: dump from a replica, recording the source's coordinates",
        BACKUP_CMDS,
        "flag",
    ),
    Opt(
        "--dir",
        "data: the directory to back up (default ~/data) or to restore into",
        DB_CMDS,
        metavar="DIR",
    ),
    Opt(
        "--exclude",
        "data: skip paths matching GLOB (repeatable)",
        BACKUP_CMDS,
        "list",
        metavar="GLOB",
    ),
    Opt("--file", "sqlite: the database file", DB_CMDS, metavar="PATH"),
    # what is stored
    Opt(
        "--label",
        "the name's label (default: $HOSTNAME, else the host name)",
        BACKUP_CMDS | {LIST, PRUNE, VERIFY, DRILL},
    ),
    Opt(
        "--what",
        "only backups of this WHAT: mysql, pgsql, data, sqlite (sql: mysql and pgsql)",
        frozenset({LIST, PRUNE}),
    ),
    Opt(
        "--compress", "gzip (default), zstd or none", BACKUP_CMDS, choices=("gzip", "zstd", "none")
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
        "s3multi: chunk size, e.g. 4G (default 4GiB)",
        BACKUP_CMDS,
        "size",
        metavar="SIZE",
        span=(1, 5 << 40),  # an S3 object is at most 5 TiB
    ),
    Opt(
        "--mode",
        "local: file mode of new backups (default 0600)",
        BACKUP_CMDS,
        "mode",
        span=(0, 0o777),  # permission bits only: never setuid, setgid or sticky
    ),
    # reporting
    Opt(
        "--min-ratio",
        "warn when a backup is under this fraction of the previous one (default 0.5)",
        BACKUP_CMDS,
        "float",
        metavar="R",
        span=(0, 1),
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
        frozenset({SCHEDULE, RUN}),
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
        "seconds without progress before giving up (default 120)",
        TARGET_CMDS,
        "float",
        metavar="SECONDS",
        span=(0.01, 86400),
    ),
    # restore
    Opt(
        "--into",
        "load into mysql, pgsql, sqlite or dir",
        frozenset({RESTORE, DRILL}),
        choices=("mysql", "pgsql", "sqlite", "dir"),
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
)
BY_DEST = {o.dest: o for o in OPTIONS}
NUMERIC = frozenset({"int", "float", "size", "mode"})
# Every number an option takes has its range in the table: none is typed without one.
assert all(o.span for o in OPTIONS if o.kind in NUMERIC), "a numeric option lacks its span"


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
                shown = [oct(int(x)) if opt.kind == "mode" else f"{x:,}" for x in (low, high)]
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


def _password(values: Mapping[str, Any]) -> str | None:
    path = values.get("password_file")
    if path:
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                return f.read().rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"cannot read --password-file {path}: {exc.strerror}") from None
    return os.environ.get("TIFFIN_DB_PASSWORD")


def source_spec(what: str, values: Mapping[str, Any]) -> SourceSpec:
    """Given WHAT and option values, return the SourceSpec. Raise UsageError if malformed."""
    kind = WHATS.get(what.lower())
    if kind is None:
        raise UsageError(f"unknown source {what!r}: use mysql, pgsql, data or sqlite")
    conn = DBConn(
        values.get("host"),
        values.get("port"),
        values.get("user"),
        _password(values),
        values.get("socket"),
    )
    if kind == "sqlite" and not values.get("file") and values.get("_command") == BACKUP:
        raise UsageError("sqlite needs the database file: --file PATH")
    return SourceSpec(
        what=kind,
        conn=conn,
        databases=tuple(values.get("database") or ()),
        consistency=values.get("consistency") or "auto",
        replica=bool(values.get("replica")),
        dir=values.get("dir") or "~/data",
        excludes=tuple(values.get("exclude") or ()),
        file=values.get("file"),
    )


def target_of(positional: list[str], min_rest: int = 0) -> tuple[TargetURL, list[str]]:
    """Given the positionals after WHAT (HOW WHERE [PATH] ... or URL ...), return the target
    and the positionals left, of which MIN_REST are required after the target."""
    if not positional:
        raise UsageError("missing the target: HOW WHERE [PATH] (e.g. local /var/backups) or a URL")
    if looks_like_url(positional[0]):
        return parse_url(positional[0]), positional[1:]
    if len(positional) < 2:
        raise UsageError(f"{positional[0]} needs WHERE (a directory, USER@HOST or a bucket)")
    extra = len(positional) - 2 - min_rest
    if extra < 0:
        raise UsageError("missing the backup NAME (or latest)")
    if extra > 1:
        raise UsageError(f"unexpected argument {positional[3 + min_rest]!r}")
    path = positional[2] if extra == 1 else None
    return parse_target(positional[0], positional[1], path), positional[2 + extra :]


def target_options(values: Mapping[str, Any]) -> TargetOptions:
    opts = TargetOptions()
    return TargetOptions(
        ssh_key=values.get("ssh_key"),
        endpoint_url=values.get("endpoint_url"),
        insecure=bool(values.get("insecure")),
        timeout=float(values.get("timeout") or opts.timeout),
        chunk_size=int(values.get("chunk_size") or opts.chunk_size),
        mode=int(values["mode"]) if values.get("mode") is not None else opts.mode,
    )


def retention(values: Mapping[str, Any]) -> Retention:
    keep = {
        k: int(values.get("keep_" + k) or 0)
        for k in ("last", "hourly", "daily", "weekly", "monthly", "yearly")
    }
    if any(v < 0 for v in keep.values()):
        raise UsageError("--keep-* takes a number of 0 or more")
    return Retention(**keep)


def backup_job(what: str, positional: list[str], values: Mapping[str, Any]) -> BackupJob:
    """Given WHAT, the target positionals and option values, return a BackupJob. Raise
    UsageError if anything is malformed: nothing has been contacted yet."""
    target, rest = target_of(positional)
    if rest:
        raise UsageError(f"unexpected argument {rest[0]!r}")
    label = check_label(values.get("label") or default_label(os.environ.get("HOSTNAME")))
    min_ratio = values.get("min_ratio")
    if min_ratio is not None and not 0 <= float(min_ratio) <= 1:
        raise UsageError("--min-ratio takes a number from 0 to 1")
    level = values.get("compress_level")
    compress = values.get("compress") or "gzip"
    if level is not None and not (
        (compress == "gzip" and 0 <= level <= 9)
        or (compress == "zstd" and 1 <= level <= 22)
        or compress == "none"
    ):
        raise UsageError(
            f"--compress-level {level} is out of range for {compress} (gzip 0-9, zstd 1-22)"
        )
    spec = source_spec(what, {**values, "_command": BACKUP})
    if spec.what == "sqlite" and not spec.file:
        raise UsageError("sqlite needs the database file: --file PATH")
    return BackupJob(
        source=spec,
        target=target,
        target_options=target_options(values),
        label=label,
        compress=compress,
        compress_level=level,
        compress_threads=int(values.get("compress_threads") or 0),
        encrypt_to=check_recipients(values.get("encrypt_to") or ()),
        min_ratio=0.5 if min_ratio is None else float(min_ratio),
        emails=tuple(values.get("email") or ()),
        ping_url=values.get("ping_url"),
        retention=retention(values),
        quiet=bool(values.get("quiet")),
        debug=bool(values.get("debug")),
        name=values.get("name") or "",
    )


def restore_job(positional: list[str], values: Mapping[str, Any]) -> RestoreJob:
    """Given RESTORE's positionals (HOW WHERE [PATH] NAME, or URL NAME) and option values,
    return a RestoreJob. Raise UsageError if malformed."""
    target, rest = target_of(positional, min_rest=1)
    if len(rest) != 1:
        raise UsageError("restore takes one backup NAME (or latest) after the target")
    into, output = values.get("into"), values.get("output")
    if into and output:
        raise UsageError("give either --into or --output, not both")
    if not into and not output:
        raise UsageError(
            "say where to restore: --output FILE (- for stdout) or --into mysql|pgsql|sqlite|dir"
        )
    if into == "dir" and not values.get("dir"):
        raise UsageError("--into dir needs the destination: --dir DIR")
    if into == "sqlite" and not values.get("file"):
        raise UsageError("--into sqlite needs the destination file: --file PATH")
    spec = source_spec({"dir": "data"}.get(into or "", into or "data"), values)
    return RestoreJob(
        target=target,
        name=check_name(rest[0]),
        target_options=target_options(values),
        into=into,
        output=output,
        source=spec,
        identity=values.get("identity"),
        force=bool(values.get("force")),
        overwrite=bool(values.get("overwrite")),
        source_id=values.get("source_id"),
        quiet=bool(values.get("quiet")),
        debug=bool(values.get("debug")),
    )

"""The edge between argv and the jobs: positionals and option values (typed by the options
table, tiffin/options.py) become frozen jobs, and a job's options become argv again."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tiffin import options
from tiffin.catalog.naming import check_label, check_name, default_label, parse_name
from tiffin.errors import UsageError
from tiffin.job import (
    BackupJob,
    BinlogJob,
    DBConn,
    DrillJob,
    RestoreJob,
    Retention,
    SourceSpec,
    TargetOptions,
    TargetURL,
    looks_like_url,
)
from tiffin.numbers import parse_lsn, parse_utc_time
from tiffin.numbers import parse_size as parse_size  # where callers have found it
from tiffin.options import BACKUP
from tiffin.sources import ANY_PHYSICAL, INTO, PHYSICAL, SOURCES, TYPED, WHATS, spoken
from tiffin.targets import HOWS
from tiffin.targets.where import target_of as target_of  # where callers have found it

SECRET_MAX = 64 << 10  # a password file holds one password


def _password(values: Mapping[str, Any]) -> str | None:
    path = values.get("password_file")
    if path:
        try:
            with open(os.path.expanduser(path), "rb") as f:
                raw = f.read(SECRET_MAX + 1)  # /dev/zero too: never more than this
        except OSError as exc:
            raise UsageError(f"cannot read --password-file {path}: {exc.strerror}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"--password-file {path} is not UTF-8 text") from None
        if len(raw) > SECRET_MAX or "\0" in text:
            raise UsageError(
                f"--password-file {path} holds more than a password (over 64 KiB, or a NUL)"
            )
        return text.rstrip("\r\n")
    return os.environ.get("TIFFIN_DB_PASSWORD")


def _recipients(given: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Given --encrypt-to values, return them checked (age is loaded only when one is given)."""
    if not given:
        return ()
    from tiffin.codecs.age import check_recipients

    return check_recipients(given)


def source_spec(what: str, values: Mapping[str, Any]) -> SourceSpec:
    """Given WHAT and option values, return the SourceSpec. Raise UsageError if malformed."""
    kind = WHATS.get(what.lower())
    if kind is None:
        raise UsageError(f"unknown source {what!r}: use {spoken(TYPED)}")
    physical = bool(values.get("physical")) or bool(SOURCES[kind].physical_of)
    if physical and not SOURCES[kind].physical_of:
        if kind not in PHYSICAL:
            raise UsageError(
                f"--physical backs up a whole server of {spoken(PHYSICAL)}, not {kind}"
            )
        kind = PHYSICAL[kind].what
    if SOURCES[kind].physical_of and values.get("database"):
        raise UsageError("--physical backs up the whole server: drop --database")
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
        consistency=values.get("consistency") or options.default("consistency"),
        replica=bool(values.get("replica")),
        dir=values.get("dir") or options.default("dir"),
        excludes=tuple(values.get("exclude") or ()),
        file=values.get("file"),
        physical=physical,
        counts=values.get("counts") or options.default("counts"),
    )


def names_target(word: str) -> bool:
    """Given the first positional of `status`, return whether it starts a target (a HOW or a
    URL) rather than naming a config's job."""
    return looks_like_url(word) or word.lower() in HOWS


def target_options(values: Mapping[str, Any]) -> TargetOptions:
    def given(dest: str) -> Any:
        value = values.get(dest)
        return options.default(dest) if value is None else value

    return TargetOptions(
        ssh_key=values.get("ssh_key"),
        endpoint_url=values.get("endpoint_url"),
        insecure=bool(values.get("insecure")),
        timeout=float(given("timeout")),
        chunk_size=int(given("chunk_size")),
        mode=int(given("mode")),
    )


def retention(values: Mapping[str, Any]) -> Retention:
    keep = {
        k: int(values.get("keep_" + k) or 0)
        for k in ("last", "hourly", "daily", "weekly", "monthly", "yearly")
    }
    if any(v < 0 for v in keep.values()):
        raise UsageError("--keep-* takes a number of 0 or more")
    return Retention(**keep)


def watching(values: Mapping[str, Any]) -> tuple[str | None, str | None, tuple[str, ...]]:
    """Given option values, return (--metrics-file, --pushgateway, --notify), the last two
    else TIFFIN_PUSHGATEWAY_URL and TIFFIN_NOTIFY (URLs split by spaces), where a scheduled
    job keeps them. Raise UsageError if one is malformed: nothing is touched yet."""
    metrics_file = values.get("metrics_file")
    gateway = values.get("pushgateway") or os.environ.get("TIFFIN_PUSHGATEWAY_URL") or None
    urls = values.get("notify") or tuple(os.environ.get("TIFFIN_NOTIFY", "").split())
    if metrics_file is not None or gateway is not None:
        from tiffin.tell import metrics  # the reporting modules load when a job asks for them

        metrics.check(metrics_file, gateway)
    if urls:
        from tiffin.tell import notices

        urls = notices.check(urls)
    return metrics_file, gateway, tuple(urls)


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
    compress = values.get("compress") or options.default("compress")
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
    metrics_file, gateway, urls = watching(values)
    return BackupJob(
        source=spec,
        target=target,
        target_options=target_options(values),
        label=label,
        compress=compress,
        compress_level=level,
        compress_threads=int(values.get("compress_threads") or 0),
        encrypt_to=_recipients(values.get("encrypt_to") or ()),
        min_ratio=options.default("min_ratio") if min_ratio is None else float(min_ratio),
        emails=tuple(values.get("email") or ()),
        ping_url=values.get("ping_url"),
        retention=retention(values),
        quiet=bool(values.get("quiet")),
        debug=bool(values.get("debug")),
        name=values.get("name") or "",
        metrics_file=metrics_file,
        pushgateway=gateway,
        notify=urls,
        job_name=values.get("job_name") or "",
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
            "say where to restore: --output FILE (- for stdout) or --into " + "|".join(INTO)
        )
    if into in INTO and INTO[into].lands == "folder" and not values.get("dir"):
        raise UsageError(f"--into {into} needs the destination: --dir DIR")
    if into == "sqlite" and not values.get("file"):
        raise UsageError("--into sqlite needs the destination file: --file PATH")
    spec = source_spec(INTO[into].what if into in INTO else into or "data", values)
    to_time, to_lsn = recovery_target(values)
    if to_lsn and into == "mysqldata":
        raise UsageError("--to-lsn is a PostgreSQL position: recover MariaDB with --to-time")
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
        to_time=to_time,
        to_lsn=to_lsn,
        owner=values.get("owner"),
    )


def recovery_target(values: Mapping[str, Any]) -> tuple[datetime | None, str | None]:
    """Given option values, return (--to-time as aware UTC, --to-lsn). Raise UsageError if
    both are given or either is malformed."""
    raw_time, raw_lsn = values.get("to_time"), values.get("to_lsn")
    if raw_time and raw_lsn:
        raise UsageError("give either --to-time or --to-lsn, not both")
    return (
        parse_utc_time(raw_time) if raw_time else None,
        parse_lsn(raw_lsn) if raw_lsn else None,
    )


def physical_into(name: str, physical: bool) -> str | None:
    """Given a drill's NAME and --physical, return the --into its physical backup needs
    (SPEC §6: a base or physical backup needs none), or None if that is not told."""
    parsed = parse_name(name)
    kind = SOURCES.get(parsed.kind) if parsed else None
    if kind is not None and kind.physical_of:
        return kind.into
    if not physical or name != "latest":
        return None
    kinds = list(PHYSICAL.values())  # one kind: its own; several: the newest one found there
    return kinds[0].into if len(kinds) == 1 else ANY_PHYSICAL


def drill_job(positional: list[str], values: Mapping[str, Any]) -> DrillJob:
    """Given DRILL's positionals (HOW WHERE [PATH] NAME, or URL NAME) and option values,
    return a DrillJob. Raise UsageError if anything is malformed."""
    target, rest = target_of(positional, min_rest=1)
    if len(rest) != 1:
        raise UsageError("drill takes one backup NAME (or latest) after the target")
    into = values.get("into") or physical_into(rest[0], bool(values.get("physical")))
    if not into:
        raise UsageError(f"say where to drill: --into {spoken(INTO)}")
    if values.get("database"):
        raise UsageError("drill loads into scratch databases of its own: drop --database")
    metrics_file, gateway, urls = watching(values)
    from tiffin.tell import notify

    return DrillJob(
        target=target,
        name=check_name(rest[0]),
        into=into,
        source=source_spec(INTO.get(into, next(iter(PHYSICAL.values()))).what, values),
        target_options=target_options(values),
        identity=values.get("identity"),
        label=values.get("label"),
        workdir=values.get("dir"),
        emails=notify.check_addresses(values.get("email") or ()),
        ping_url=notify.check_ping_url(values["ping_url"]) if values.get("ping_url") else None,
        source_id=values.get("source_id"),
        to_time=recovery_target(values)[0],
        metrics_file=metrics_file,
        pushgateway=gateway,
        notify=urls,
    )


def verify_args(args: list[str], every: bool, identity: str | None) -> tuple[TargetURL, str | None]:
    """Given verify's positionals, --all and --identity, return the target and the NAME to
    verify (None: all). Raise UsageError if they do not fit together."""
    if identity and not os.access(os.path.expanduser(identity), os.R_OK):
        raise UsageError(f"cannot read the identity file {identity}")
    if every and args and (parse_name(args[-1]) or args[-1] == "latest"):
        raise UsageError(f"give a backup NAME or --all, not both (got {args[-1]!r})")
    url, rest = target_of(args, min_rest=0 if every else 1)
    if every:
        return url, None
    if len(rest) != 1:
        raise UsageError("verify takes one backup NAME (or latest), or --all")
    return url, check_name(rest[0])


# Paths on the line are made absolute: cron starts in $HOME, not where schedule was run.
PATH_DESTS = frozenset(
    {"password_file", "dir", "file", "ssh_key", "socket", "env_file", "metrics_file"}
)


def off_the_line(dest: str, value: Any) -> bool:
    """Given an option's dest and value, return whether it may hold a secret and so travels
    in a scheduled job's 0600 secrets file, never on its line (tiffin/commands/schedule.py
    job_env): Apprise URLs always (a token is their path), a Pushgateway URL with a user."""
    if dest == "notify":
        return True
    from tiffin.tell import metrics

    return dest == "pushgateway" and metrics.gateway(value)[1] is not None


def option_args(
    values: Mapping[str, Any], skip: frozenset[str] = frozenset(), command: str = options.BACKUP
) -> list[str]:
    """Given typed option values, return the options of COMMAND that say the same on a
    command line, in the options table's order (paths made absolute)."""
    from tiffin.commands.schedule import option_value

    args: list[str] = []
    for opt in options.OPTIONS:
        value = values.get(opt.dest)
        if command not in opt.commands or not opt.config or value is None or opt.dest in skip:
            continue
        if off_the_line(opt.dest, value):
            continue
        items = list(value) if opt.kind == "list" else [value]
        for item in items:
            if opt.kind == "flag":
                args += [opt.flag] if item else []
            elif opt.kind == "mode":
                args += [opt.flag, format(item, "04o")]
            elif opt.dest in PATH_DESTS:
                args += [opt.flag, os.path.abspath(os.path.expanduser(str(item)))]
            else:
                args += option_value(opt.flag, str(item))
    return args


def binlog_job(positional: list[str], values: Mapping[str, Any]) -> BinlogJob:
    """Given binlog's positionals (HOW WHERE [PATH], or URL) and option values, return its
    job. Raise UsageError if anything is malformed: nothing is contacted yet."""
    target, rest = target_of(positional)
    if rest:
        raise UsageError(f"unexpected argument {rest[0]!r}")
    if values.get("max_lag") is not None and not values.get("follow"):
        raise UsageError("--max-lag is for --follow")
    spec = source_spec("mysql", values)
    metrics_file, gateway, urls = watching(values)
    max_lag = values.get("max_lag")
    return BinlogJob(
        conn=spec.conn,
        target=target,
        target_options=target_options(values),
        label=check_label(values.get("label") or default_label(os.environ.get("HOSTNAME"))),
        compress=values.get("compress") or options.default("compress"),
        compress_level=values.get("compress_level"),
        follow=bool(values.get("follow")),
        max_lag=float(options.default("max_lag") if max_lag is None else max_lag),
        quiet=bool(values.get("quiet")),
        metrics_file=metrics_file,
        pushgateway=gateway,
        notify=urls,
        job_name=values.get("job_name") or "",
    )

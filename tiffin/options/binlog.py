"""The options of `tiffin binlog` (SPEC §6): its own rows, and the existing rows it takes."""

from __future__ import annotations

from dataclasses import replace

from tiffin.options.opt import SCHEDULE, Opt

BINLOG = "binlog"
# The rows of other commands that binlog takes as they are: connection, target, watching.
BINLOG_TAKES = frozenset(
    {
        "host",
        "port",
        "user",
        "socket",
        "password_file",
        "label",
        "compress",
        "compress_level",
        "timeout",
        "ssh_key",
        "endpoint_url",
        "insecure",
        "mode",
        "quiet",
        "metrics_file",
        "pushgateway",
        "notify",
        "env_file",
        "job_name",
    }
)
MAX_LAG = 60.0

BINLOG_OPTIONS: tuple[Opt, ...] = (
    Opt(
        "--follow",
        "binlog: keep running, shipping as the server writes (a service)",
        frozenset({BINLOG, SCHEDULE}),
        "flag",
    ),
    Opt(
        "--max-lag",
        "binlog --follow: the most seconds the archive may lag the server",
        frozenset({BINLOG, SCHEDULE}),
        "float",
        metavar="SECONDS",
        span=(1, 86400),
        default=MAX_LAG,
    ),
)


def with_binlog(options: tuple[Opt, ...]) -> tuple[Opt, ...]:
    """Given the option rows, return them with binlog added to the rows it takes, then its
    own rows."""
    taken = tuple(
        replace(o, commands=o.commands | {BINLOG}) if o.dest in BINLOG_TAKES else o for o in options
    )
    return taken + BINLOG_OPTIONS

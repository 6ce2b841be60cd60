"""wal-push and wal-fetch read in full (tiffin/entry.py reads the usual lines leanly)."""

from __future__ import annotations

from typing import Any

from tiffin.cli.registry import command
from tiffin.errors import ExitStatus


@command("wal-push", "PostgreSQL's archive_command: HOW WHERE [PATH] %p")
def cmd_wal_push(args: list[str], values: dict[str, Any]) -> int:
    from tiffin import config, walargs
    from tiffin.commands import wal

    key = walargs.spool_key(walargs.PUSH, args, values)
    config.load_env_files(values.get("env_file") or ())
    wal.push(walargs.wal_job(walargs.PUSH, args, values, key))
    return ExitStatus.OK


@command("wal-fetch", "PostgreSQL's restore_command: HOW WHERE [PATH] %f %p")
def cmd_wal_fetch(args: list[str], values: dict[str, Any]) -> int:
    from tiffin import config, walargs
    from tiffin.commands import wal

    key = walargs.spool_key(walargs.FETCH, args, values)
    config.load_env_files(values.get("env_file") or ())
    wal.fetch(walargs.wal_job(walargs.FETCH, args, values, key))
    return ExitStatus.OK

"""wal-push and wal-fetch read in full (tiffin/entry.py reads the usual lines leanly)."""

from __future__ import annotations

from typing import Any

from tiffin.cli.registry import command
from tiffin.errors import ExitStatus


def _run(command: str, args: list[str], values: dict[str, Any]) -> int:
    from tiffin import config, walargs
    from tiffin.commands import wal

    key = walargs.spool_key(command, args, values)
    config.load_env_files(values.get("env_file") or ())
    job = walargs.wal_job(command, args, values, key)
    (wal.push if command == walargs.PUSH else wal.fetch)(job)
    return ExitStatus.OK


@command("wal-push", "PostgreSQL's archive_command: HOW WHERE [PATH] %p")
def cmd_wal_push(args: list[str], values: dict[str, Any]) -> int:
    return _run("wal-push", args, values)


@command("wal-fetch", "PostgreSQL's restore_command: HOW WHERE [PATH] %f %p")
def cmd_wal_fetch(args: list[str], values: dict[str, Any]) -> int:
    return _run("wal-fetch", args, values)

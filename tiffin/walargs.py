"""wal-push and wal-fetch's positionals and option values, as either the lean entry
(tiffin/entry.py) or the full command line (tiffin/cli/wal.py) read them, into a WalJob.
It loads only what these two commands need: PostgreSQL starts one per WAL file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tiffin.catalog import walnames
from tiffin.catalog.naming import check_label, default_label
from tiffin.commands.wal import WalJob
from tiffin.commands.walask import key_of
from tiffin.errors import UsageError
from tiffin.job import TargetOptions
from tiffin.targets.where import target_of
from tiffin.tell import metrics

PUSH, FETCH = "wal-push", "wal-fetch"
NEEDS = {PUSH: ("WALFILE", "%p"), FETCH: ("NAME DEST", "%f %p")}


def spool_key(command: str, positional: list[str], values: Mapping[str, Any]) -> str:
    """Given wal-push or wal-fetch, its positionals and option values, return the key that
    names its archive in the spools (walask.key_of), taken before --env-file is loaded,
    as the lean entry takes it."""
    wanted = 1 if command == PUSH else 2
    return key_of(positional[: max(0, len(positional) - wanted)], values)


def wal_job(
    command: str, positional: list[str], values: Mapping[str, Any], key: str | None = None
) -> WalJob:
    """Given wal-push or wal-fetch, its positionals and option values (and its spool_key()
    when env files were loaded since), return its WalJob. Raise UsageError if anything is
    malformed: nothing has been contacted yet."""
    wanted = 1 if command == PUSH else 2
    if len(positional) < 2 + wanted and not (positional and "://" in positional[0]):
        shown, example = NEEDS[command]
        raise UsageError(f"{command} needs HOW WHERE [PATH] {shown} (PostgreSQL's {example})")
    target, rest = target_of(positional, wanted)
    key = key or spool_key(command, positional, values)
    if len(rest) != wanted:
        shown, example = NEEDS[command]
        raise UsageError(f"{command} needs HOW WHERE [PATH] {shown} (PostgreSQL's {example})")
    named = rest[0] if command == FETCH else os.path.basename(rest[-1])
    if walnames.parse(named) is None:  # PostgreSQL passes nothing else: a mistyped line
        raise UsageError(f"{named!r} is not the name of a WAL, .history, .backup or .partial file")
    label = check_label(values.get("label") or default_label(os.environ.get("HOSTNAME")))
    metrics_file = values.get("metrics_file")
    gateway = values.get("pushgateway") or os.environ.get("TIFFIN_PUSHGATEWAY_URL") or None
    metrics.check(metrics_file, gateway)
    timeout = values.get("timeout")
    options = TargetOptions(
        ssh_key=values.get("ssh_key"),
        endpoint_url=values.get("endpoint_url"),
        insecure=bool(values.get("insecure")),
        timeout=TargetOptions.timeout if timeout is None else float(timeout),
    )
    return WalJob(
        target=target,
        label=label,
        path=rest[-1],
        name=rest[0] if command == FETCH else "",
        options=options,
        key=key,
        metrics_file=metrics_file if command == PUSH else None,
        pushgateway=gateway if command == PUSH else None,
    )

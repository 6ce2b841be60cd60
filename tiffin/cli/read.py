"""The commands that read what a target holds: restore, list, verify, prune, drill, status."""

from __future__ import annotations

import time
from typing import Any

from tiffin import jobargs
from tiffin.cli.registry import command, err, out
from tiffin.errors import ExitStatus, TiffinError, UsageError, failure_line


@command("restore", "bring a backup back: HOW WHERE [PATH] NAME|latest, or URL NAME")
def cmd_restore(args: list[str], values: dict[str, Any]) -> int:
    from tiffin.engine import pipeline

    job = jobargs.restore_job(args, values)
    if job.into == "pgdata":
        return _restore_pgdata(job)
    result = None
    if job.into == "mysql":
        from tiffin.commands import pitr

        result = pitr.restore(job)  # None: no binary log archive, no --to-time
    elif job.into == "mysqldata" and job.to_time is not None:
        from tiffin.commands import mysqlpitr

        result = mysqlpitr.restore(job)
    if result is None:
        result = pipeline.restore(job)
    (err if job.output == "-" else out)(
        f"Restore of {result.name} completed: {result.summary} in {result.seconds:.1f} s."
    )
    return ExitStatus.OK


def _restore_pgdata(job: Any) -> int:
    from tiffin.commands import pgrestore, schedule

    got = pgrestore.run(job, schedule.tiffin_argv())
    out(f"Restore of {got.name} completed: {got.summary} in {got.seconds:.1f} s.")
    out(f"Start the server with: {got.start}")
    return ExitStatus.OK


@command("list", "show the backups at a target, newest first: HOW WHERE [PATH], or URL")
def cmd_list(args: list[str], values: dict[str, Any]) -> int:
    import json

    from tiffin.catalog import holdings
    from tiffin.commands import inventory
    from tiffin.targets import connected

    url, rest = jobargs.target_of(args)
    if rest:
        raise UsageError(f"unexpected argument {rest[0]!r}")
    what = holdings.check_what(values.get("what"))
    options = jobargs.target_options(values)
    with connected(url, options) as target:
        items = holdings.select(holdings.survey(target), values.get("label"), what)
        if values.get("json"):
            out(json.dumps([b.to_json() for b in items], indent=2))
            return ExitStatus.OK
        for line in inventory.table(items) if items else [f"No backups at {url.redacted()}."]:
            out(line)
        if any(b.kind == "pgbase" for b in items):
            from tiffin.commands import recoverable

            for line in recoverable.window_lines(url, options, items):
                out(line)
        if any(b.what in ("mysql", "sql", "mariabackup") for b in items):
            from tiffin.commands import binlogcycle

            for line in binlogcycle.window_lines(url, options, target, items):
                out(line)
    return ExitStatus.OK


@command("verify", "re-read backups and check them: HOW WHERE [PATH] NAME|latest|--all")
def cmd_verify(args: list[str], values: dict[str, Any]) -> int:
    from tiffin.commands import inventory
    from tiffin.targets import connected

    every = bool(values.get("all"))
    url, name = jobargs.verify_args(args, every, values.get("identity"))
    verdicts = []
    options = jobargs.target_options(values)
    with connected(url, options) as target:
        items = inventory.pick(target, name, values.get("label"))
        for item, verdict in zip(
            items, inventory.verify(target, items, values.get("identity")), strict=True
        ):
            if item.kind == "pgbase":
                from tiffin.commands import recoverable

                verdict = recoverable.with_wal(url, options, item, verdict)
            elif item.what in ("mysql", "sql", "mariabackup"):
                from tiffin.commands import binlogcycle

                verdict = binlogcycle.with_binlogs(url, options, target, item, verdict)
            out(verdict.line())
            verdicts.append(verdict)
    if every:
        out(inventory.summary(verdicts))
    problem = inventory.problem(verdicts, every)
    if problem:
        err(f"tiffin: {problem}")
    return ExitStatus.FAILED if problem else ExitStatus.OK


@command("prune", "delete backups a --keep-* policy does not keep: HOW WHERE [PATH]")
def cmd_prune(args: list[str], values: dict[str, Any]) -> int:
    from tiffin.catalog import holdings, retention
    from tiffin.engine.prune import apply_policy
    from tiffin.targets import connected

    url, rest = jobargs.target_of(args)
    if rest:
        raise UsageError(f"unexpected argument {rest[0]!r}")
    policy = jobargs.retention(values)
    what = holdings.check_what(values.get("what"))
    dry_run = bool(values.get("dry_run"))
    retention.require(policy)  # no --keep-*: exit 2 before anything is contacted
    options = jobargs.target_options(values)
    wal: list[str] = []
    binlogs: list[str] = []
    with connected(url, options) as target:
        decisions = apply_policy(target, policy, values.get("label"), what, None, dry_run)
        gone = {d.name for d in decisions if not d.keep}
        if any(d.backup.kind == "pgbase" for d in decisions):
            from tiffin.engine import walview

            wal = walview.prune_after(url, options, target, gone, values.get("label"), dry_run)
        if what in (None, "mysql", "sql", "mariabackup"):
            from tiffin.commands import binlogcycle

            label = values.get("label")
            binlogs = binlogcycle.prune_binlogs(url, options, target, gone, label, dry_run)
    for d in decisions:
        out(d.line(dry_run))
    for line in [*wal, *binlogs]:
        out(line)
    out(retention.summary(decisions, dry_run))
    return ExitStatus.OK


@command("drill", "restore a backup into scratch space and check it: HOW WHERE [PATH] NAME")
def cmd_drill(args: list[str], values: dict[str, Any]) -> int:
    from tiffin.commands import drill

    job = jobargs.drill_job(args, values)
    drill.announce(job, err)
    started = time.monotonic()
    try:
        result = drill.run(job)
    except TiffinError as exc:
        if isinstance(exc, UsageError):
            raise
        lines = [failure_line(exc.subject or f"Drill of {job.name}", exc)]
        noted = exc.warnings if isinstance(exc, drill.DrillFailed) else []
        lines += [f"WARNING: {warning}" for warning in noted]
        for line in lines:
            err(line)
        drill.send_report(job, lines, False, err, time.monotonic() - started, out)
        return ExitStatus.FAILED
    lines = [f"Drill of {result.name} passed: {result.summary} checked in {result.seconds:.1f} s."]
    lines += [f"WARNING: {warning}" for warning in result.warnings]
    for line in lines:
        out(line)
    drill.send_report(job, lines, True, err, result.seconds, out)
    return ExitStatus.OK


@command("status", "each job's newest backup, last drill and verdict: [JOB ...] | HOW WHERE [PATH]")
def cmd_status(args: list[str], values: dict[str, Any]) -> int:
    from datetime import UTC, datetime

    from tiffin import config
    from tiffin.catalog.watch import HISTORY, MAX_AGE
    from tiffin.commands import status, statuspage

    if values.get("config") or not args or not jobargs.names_target(args[0]):
        if values.get("label"):
            raise UsageError("--label keeps one label of a target: a config's jobs have theirs")
        jobs = config.select(config.load(config.config_path(values.get("config"))), args)
        places = status.places_of(jobs)
    else:
        url, rest = jobargs.target_of(args)
        if rest:
            raise UsageError(f"unexpected argument {rest[0]!r}")
        places = [status.Place(url, jobargs.target_options(values))]
    now, html = datetime.now(UTC), values.get("html")
    found = status.gather(
        places, now, values.get("max_age") or MAX_AGE, HISTORY if html else 0, values.get("label")
    )
    for line in [status.as_json(found)] if values.get("json") else status.table(found):
        out(line)
    if html:
        statuspage.write(html, found, now)
    problem = status.problem(found)
    if problem:
        err(f"tiffin: {problem}")
    return ExitStatus.FAILED if problem else ExitStatus.OK

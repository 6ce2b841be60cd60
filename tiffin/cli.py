"""argv -> Job -> run; main() alone maps exceptions to exit statuses and prints them."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from tiffin import __version__, jobargs, options, usage
from tiffin.engine import process, streams
from tiffin.errors import (
    ExitStatus,
    OutputClosed,
    TiffinError,
    UsageError,
    failure_line,
    os_error_text,
)
from tiffin.job import BackupJob
from tiffin.sources import SOURCES, spoken

Handler = Callable[[list[str], dict[str, Any]], int]
COMMANDS: dict[str, tuple[str, Handler]] = {}


def command(name: str, summary: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (summary, fn)
        return fn

    return register


def parse(argv: Sequence[str]) -> tuple[str, list[str], dict[str, Any]]:
    """Given argv (without the program), return the command, its positionals and its typed
    option values. Raise UsageError if anything is malformed."""
    if not argv or argv[0] not in COMMANDS:
        if argv and argv[0] in ("-h", "--help"):
            out(usage.top_help({n: s for n, (s, _) in COMMANDS.items()}))
            raise SystemExit(0)
        if argv and argv[0] == "--version":
            out(f"tiffin {__version__}")
            raise SystemExit(0)
        what = f"unknown command {argv[0]!r}" if argv else "say what to do"
        raise UsageError(f"{what}: use one of {', '.join(COMMANDS)} (tiffin --help)")
    name = argv[0]
    ns = usage.command_parser(name, COMMANDS[name][0]).parse_intermixed_args(list(argv[1:]))
    values: dict[str, Any] = {}
    for key, value in vars(ns).items():
        if key == "args" or value is None:
            continue
        opt = options.BY_DEST.get(key)
        if opt is None:
            values[key] = value
        elif opt.kind == "list":
            values[key] = options.coerce(opt, list(value))
        else:
            values[key] = options.coerce(opt, value)
    return name, list(ns.args), values


def out(line: str = "") -> None:
    try:
        print(line, flush=True)
    except BrokenPipeError:
        raise OutputClosed("standard output was closed") from None


def err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def backup_and_report(job: BackupJob) -> None:
    """Given a job, back it up and report it (printed, mailed, pinged), whatever happens.
    Raise the job's own error after its report is sent."""
    from tiffin.engine import pipeline
    from tiffin.tell import progress, report

    with report.Report(job, out, err) as rep:
        with progress.shown(job.quiet) as watch:
            result = pipeline.backup(job, watch=watch)
        # A prune after a successful backup goes here, before the report is made.
        rep.done(result)


@command("backup", "take a backup: WHAT HOW WHERE [PATH], or WHAT URL")
def cmd_backup(args: list[str], values: dict[str, Any]) -> int:
    from tiffin import config

    if not args:
        raise UsageError(f"say what to back up: {spoken(SOURCES)}")
    config.load_env_files(values.get("env_file") or ())
    job = jobargs.backup_job(args[0], args[1:], values)
    backup_and_report(job)
    return ExitStatus.OK


RUN_OVERRIDES = (
    "quiet",
    "insecure",
    "metrics_file",
)  # given to `run`, they apply to every job of the config


@command("run", "run the jobs of a config file, one after another: [JOB ...] [--config FILE]")
def cmd_run(args: list[str], values: dict[str, Any]) -> int:
    from tiffin import config
    from tiffin.tell import report

    config.load_env_files(values.get("env_file") or ())
    overrides = {k: values[k] for k in RUN_OVERRIDES if k in values}
    jobs = config.select(config.load(config.config_path(values.get("config")), overrides), args)
    for _, job in jobs:
        report.check(job)
    failed = 0
    for i, (name, job) in enumerate(jobs):
        if i:
            out()
        try:
            backup_and_report(job)
        except TiffinError as exc:
            failed += 1
            err(failure_line(exc.subject or f"Backup of job {name}", exc))
        except OSError as exc:
            failed += 1
            err(failure_line(f"Backup of job {name}", os_error_text(exc)))
        except Exception as exc:  # one job's surprise must not keep the others from running
            failed += 1
            err(failure_line(f"Backup of job {name}", f"unexpected error: {exc!r}"))
    return ExitStatus.FAILED if failed else ExitStatus.OK


@command("schedule", "run a backup daily from cron: WHAT HOW WHERE [PATH] [--at HH:MM|--cron EXPR]")
def cmd_schedule(args: list[str], values: dict[str, Any]) -> int:
    from tiffin import config
    from tiffin.commands import cron, schedule
    from tiffin.tell import report

    if values.get("list"):
        if args:
            raise UsageError("--list takes no other argument")
        for line in schedule.listing():
            out(line)
        return ExitStatus.OK
    when = cron.when(values.get("at"), values.get("cron"))
    if values.get("kubernetes"):
        return schedule_kubernetes(args, values, when)
    if values.get("config"):
        extra = [
            k
            for k in values
            if k in options.BY_DEST and k not in SCHEDULE_CONFIG_KEYS | options.EDGE_ONLY
        ]
        if extra:
            flags = ", ".join(options.BY_DEST[k].flag for k in extra)
            raise UsageError(f"with --config, put {flags} in the config file's jobs")
        path = config.config_path(values["config"])
        run_values = {k: values[k] for k in RUN_OVERRIDES if k in values}
        jobs = config.select(config.load(path, run_values), args)
        for _, job in jobs:
            report.check(job)
        plans = [
            schedule.plan_config(path, name, job, jobargs.option_args(run_values))
            for name, job in jobs
        ]
    else:
        if not args:
            raise UsageError("say what to schedule: WHAT HOW WHERE [PATH], --config FILE or --list")
        job = jobargs.backup_job(args[0], args[1:], values)
        report.check(job)
        plans = [schedule.plan_backup(job, jobargs.option_args(values, skip=frozenset({"label"})))]
    install = schedule.schedule_systemd if values.get("systemd") else schedule.schedule_cron
    for line in install(plans, when):
        out(line)
    return ExitStatus.OK


SCHEDULE_CONFIG_KEYS = frozenset({"config", "at", "cron", *RUN_OVERRIDES})


def schedule_kubernetes(args: list[str], values: dict[str, Any], when: str | None) -> int:
    """Print the CronJob of the backup ARGS and VALUES describe; change nothing here."""
    from tiffin.commands import kube, schedule
    from tiffin.tell import report

    if values.get("config") or values.get("systemd") or not args:
        raise UsageError("--kubernetes schedules one backup given as WHAT HOW WHERE [PATH]")
    job = jobargs.backup_job(args[0], args[1:], values)
    kube.refuse(job, values)
    report.check(job)
    plan = schedule.plan_backup(job, jobargs.option_args(values, skip=frozenset({"label"})))
    ns = values.get("namespace")
    doc = kube.cronjob(plan, job, when, ns, values.get("secret"), values.get("image"))
    out(kube.render(doc, kube.secret_hint(doc, plan, job, ns)).rstrip("\n"))
    return ExitStatus.OK


@command("unschedule", "remove scheduled jobs: JOB_ID ... | --all")
def cmd_unschedule(args: list[str], values: dict[str, Any]) -> int:
    from tiffin.commands import schedule

    every = bool(values.get("all"))
    if every == bool(args):
        raise UsageError("say which jobs to remove: JOB_ID ... (tiffin schedule --list) or --all")
    for line in schedule.unschedule(args, every):
        out(line)
    return ExitStatus.OK


@command("restore", "bring a backup back: HOW WHERE [PATH] NAME|latest, or URL NAME")
def cmd_restore(args: list[str], values: dict[str, Any]) -> int:
    from tiffin.engine import pipeline

    job = jobargs.restore_job(args, values)
    result = pipeline.restore(job)
    (err if job.output == "-" else out)(
        f"Restore of {result.name} completed: {result.summary} in {result.seconds:.1f} s."
    )
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
    with connected(url, jobargs.target_options(values)) as target:
        items = holdings.select(holdings.survey(target), values.get("label"), what)
    if values.get("json"):
        out(json.dumps([b.to_json() for b in items], indent=2))
        return ExitStatus.OK
    for line in inventory.table(items) if items else [f"No backups at {url.redacted()}."]:
        out(line)
    return ExitStatus.OK


@command("verify", "re-read backups and check them: HOW WHERE [PATH] NAME|latest|--all")
def cmd_verify(args: list[str], values: dict[str, Any]) -> int:
    from tiffin.commands import inventory
    from tiffin.targets import connected

    every = bool(values.get("all"))
    url, name = jobargs.verify_args(args, every, values.get("identity"))
    verdicts = []
    with connected(url, jobargs.target_options(values)) as target:
        items = inventory.pick(target, name, values.get("label"))
        for verdict in inventory.verify(target, items, values.get("identity")):
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
    with connected(url, jobargs.target_options(values)) as target:
        decisions = apply_policy(target, policy, values.get("label"), what, None, dry_run)
    for d in decisions:
        out(d.line(dry_run))
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
    return ExitStatus.OK if status.all_ok(found) else ExitStatus.FAILED


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run tiffin; return the exit status. The only place exceptions become messages."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="tiffin: %(message)s",
        stream=sys.stderr,
    )
    # Both handlers are installed whatever was inherited: a shell runs `cmd &` and nohup
    # with SIGINT ignored, and Python then leaves it ignored, so Ctrl-C or `kill -INT`
    # would not stop a run and clean it up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    process.begin()
    streams.keep_blocks_in_heap()
    try:
        cmd, args, values = parse(argv)
        return COMMANDS[cmd][1](args, values)
    except SystemExit as exc:
        return int(exc.code or 0)
    except OutputClosed:  # quiet, as `cat | head` is; the exit's own flush says nothing either
        process.kill_all()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.FAILED
    except TiffinError as exc:
        if debug:
            traceback.print_exc()
        err(failure_line(exc.subject, exc) if exc.subject else f"tiffin: {exc}")
        return exc.exit_status
    except KeyboardInterrupt:
        process.kill_all()
        err("tiffin: interrupted; stopped and cleaned up, nothing was published")
        return ExitStatus.FAILED
    except OSError as exc:  # one that no module closer to it explained
        process.kill_all()
        if debug:
            traceback.print_exc()
        err(f"tiffin: {os_error_text(exc)}")
        return ExitStatus.FAILED
    except Exception as exc:
        process.kill_all()
        if debug:
            traceback.print_exc()
        err(f"tiffin: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)")
        return ExitStatus.FAILED
    finally:
        process.end()  # children lead process groups of their own: none may outlive tiffin


if __name__ == "__main__":
    sys.exit(main())

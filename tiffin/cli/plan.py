"""The commands that take backups or plan them: backup, run, schedule, unschedule."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from tiffin import jobargs, options
from tiffin.cli.registry import command, err, out
from tiffin.errors import ExitStatus, TiffinError, UsageError, failure_line, os_error_text
from tiffin.job import BackupJob, BinlogJob
from tiffin.sources import SOURCES, spoken

if TYPE_CHECKING:
    from tiffin.commands.schedule import Plan


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
    if not args:
        raise UsageError(f"say what to back up: {spoken(SOURCES)}")
    if values.get("env_file"):  # config (and its TOML parser) loads only when it is needed
        from tiffin import config

        config.load_env_files(values["env_file"])
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
    path = config.config_path(values.get("config"))
    every = config.select(config.load(path, overrides), args)
    for name, one in every:
        if isinstance(one, BackupJob):
            report.check(one)
        elif one.follow and len(every) > 1:  # it never ends: the jobs after it would not run
            conf = f"--config {shlex.quote(path)}"
            raise UsageError(
                f"job {name} follows the server and never ends: run it alone (tiffin run {name} "
                f"{conf}) or as a service (tiffin schedule {conf} {name} --systemd)"
            )
    failed = 0
    for i, (name, one) in enumerate(every):
        if i:
            out()
        try:
            if isinstance(one, BinlogJob):
                from tiffin.cli.binlog import run_binlog

                run_binlog(one)
                continue
            backup_and_report(one)
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
    from tiffin.commands import binlogunit, cron, schedule
    from tiffin.tell import report

    if values.get("list"):
        if args:
            raise UsageError("--list takes no other argument")
        for line in schedule.listing():
            out(line)
        return ExitStatus.OK
    when = cron.when(values.get("at"), values.get("cron"))
    if args and args[0] == "binlog":
        from tiffin.cli.binlog import schedule_binlog

        return schedule_binlog(args[1:], values, when)
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
        plans, services = config_plans(args, values, when)
    else:
        if not args:
            raise UsageError("say what to schedule: WHAT HOW WHERE [PATH], --config FILE or --list")
        job = jobargs.backup_job(args[0], args[1:], values)
        report.check(job)
        plans = [schedule.plan_backup(job, jobargs.option_args(values, skip=frozenset({"label"})))]
        services = []
    install = schedule.schedule_systemd if values.get("systemd") else schedule.schedule_cron
    for line in install(plans, when) if plans else []:
        out(line)
    for service in services:
        for line in binlogunit.install_service(service):
            out(line)
    return ExitStatus.OK


def config_plans(
    args: list[str], values: dict[str, Any], when: str | None
) -> tuple[list[Plan], list[Plan]]:
    """Given schedule --config's JOB names and values, return the plans of its jobs that run
    at times (backups, one-shot binlogs) and of those that run as services (binlog follow
    jobs). Raise UsageError, before anything is written, for a job that cannot be scheduled
    as asked."""
    from tiffin import config
    from tiffin.commands import binlogunit, schedule
    from tiffin.tell import report

    path = config.config_path(values["config"])
    run_values = {k: values[k] for k in RUN_OVERRIDES if k in values}
    run_args = jobargs.option_args(run_values)
    plans: list[Plan] = []
    services: list[Plan] = []
    for name, job in config.select(config.load(path, run_values), args):
        if isinstance(job, BackupJob):
            report.check(job)
            plans.append(schedule.plan_config(path, name, job, run_args))
        elif job.follow:
            binlogunit.refuse_follow(name, path, bool(values.get("systemd")), when)
            services.append(binlogunit.plan_in_config(path, name, job, run_args))
        else:
            plans.append(binlogunit.plan_in_config(path, name, job, run_args))
    return plans, services


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

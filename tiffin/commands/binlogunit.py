"""schedule binlog: `binlog --follow` as a long-running systemd user service (restarted when
it fails, checked every 5 minutes by a timer that starts it if it is not running), or a
one-shot `binlog` from cron or a timer (every 15 minutes unless --at/--cron)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import replace

from tiffin.commands.schedule import (
    Plan,
    _write_private,
    command_of,
    drop_cron_lines,
    job_env,
    job_id,
    option_value,
    plan_config,
    tiffin_argv,
    unit_path,
    write_secrets,
)
from tiffin.commands.units import exec_text
from tiffin.errors import UsageError
from tiffin.job import BackupJob, BinlogJob, SourceSpec

EVERY = "*/15 * * * *"  # a one-shot binlog's default: the archive lags at most this
STOP_SECONDS = 300  # what SIGTERM may take: storing the log --follow holds


def _as_backup(job: BinlogJob) -> BackupJob:
    """Return the mysql backup job whose environment (database, target, mail) JOB needs."""
    return BackupJob(
        SourceSpec("mysql", job.conn), job.target, notify=job.notify, pushgateway=job.pushgateway
    )


def plan(job: BinlogJob, args: Sequence[str]) -> Plan:
    """Given a checked binlog job and its options as argv words but --label, return its plan."""
    argv = [*tiffin_argv(), "binlog", job.target.redacted(), *option_value("--label", job.label)]
    c = job.conn
    ident = ["binlog", c.host, c.port, c.socket, job.target.redacted(), job.label]
    every = None if job.follow else EVERY
    return Plan(job_id(ident), (*argv, *args), job_env(_as_backup(job)), every)


def plan_in_config(path: str, name: str, job: BinlogJob, args: Sequence[str]) -> Plan:
    """Given a config file, one of its binlog jobs and the run options as argv words, return
    the plan that runs it (`tiffin run NAME --config PATH`): every 15 minutes unless
    --at/--cron, or, for a follow job, the command of its service."""
    ran = plan_config(path, name, _as_backup(job), args)
    return replace(ran, every=None if job.follow else EVERY)


def refuse_follow(name: str, path: str, systemd: bool, when: str | None) -> None:
    """Given a config's follow job, its file, --systemd and the cron time asked, raise
    UsageError saying how to schedule it if they cannot: it runs all the time, as a service."""
    again = f"tiffin schedule --config {shlex.quote(path)} {shlex.quote(name)} --systemd"
    if not systemd:
        raise UsageError(
            f"job {name} follows the server (follow = true), which cron cannot run: schedule "
            f"it as a systemd service with `{again}`, and the other jobs by name"
        )
    if when is not None:
        raise UsageError(
            f"job {name} follows the server and runs all the time, so --at and --cron do not "
            f"apply to it: schedule it on its own with `{again}`"
        )


def service_units(jid: str, command: Sequence[str]) -> tuple[str, str]:
    """Return the text of a follower's .service and of the .timer that keeps it started."""
    head = f"# tiffin:{jid} (written by tiffin schedule --systemd)\n"
    service = (
        f"{head}[Unit]\nDescription=tiffin binary log archive {jid}\n"
        "Wants=network-online.target\nAfter=network-online.target\n\n"
        f"[Service]\nType=simple\nExecStart={exec_text(command)}\n"
        "Restart=on-failure\nRestartSec=30\nKillSignal=SIGTERM\n"
        f"TimeoutStopSec={STOP_SECONDS}\n\n[Install]\nWantedBy=default.target\n"
    )
    timer = (
        f"{head}[Unit]\nDescription=Keep tiffin binary log archive {jid} running\n\n"
        "[Timer]\nOnCalendar=*:0/5\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n"
    )
    return service, timer


def install_service(p: Plan) -> list[str]:
    """Write the follower's units and secrets; return what to tell the user."""
    service, timer = service_units(p.job_id, command_of(p))
    write_secrets(p)
    _write_private(unit_path(p.job_id, "service"), service, 0o644)
    _write_private(unit_path(p.job_id, "timer"), timer, 0o644)
    unit = f"tiffin-{p.job_id}"
    return [
        f"Scheduled tiffin job {p.job_id} as the service {unit_path(p.job_id, 'service')}"
        " (and a .timer that keeps it started):",
        f"  ExecStart={exec_text(command_of(p))}",
        f"  enable it with: systemctl --user daemon-reload && systemctl --user enable --now "
        f"{unit}.service {unit}.timer",
        "  (and, to run while you are logged out: loginctl enable-linger $USER)",
        *drop_cron_lines({p.job_id}),
    ]

"""`tiffin binlog HOW WHERE [PATH]`: archive a MySQL/MariaDB server's binary logs (SPEC §6)."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from tiffin import jobargs
from tiffin.cli.registry import command, err, out
from tiffin.errors import ExitStatus, Failed, TiffinError, UsageError, failure_line
from tiffin.job import BinlogJob
from tiffin.jobargs import binlog_job


class BinlogFailed(Failed):
    def __init__(self, reason: TiffinError | str) -> None:
        super().__init__("Binlog archive", reason)


def _record(job: BinlogJob, ok: bool, started: float, size: int | None) -> None:
    from tiffin.tell import metrics

    outcome = metrics.Outcome(
        kind=metrics.ARCHIVE,
        job=job.job_name or metrics.job_label(job.label, "binlog"),
        what="binlog",
        target=job.target.redacted(),
        ok=ok,
        finished=time.time(),
        duration=time.time() - started,
        size=size,
    )
    for line in metrics.record(outcome, job.metrics_file, job.pushgateway):
        out(line)


def _notify(job: BinlogJob, where: str, line: str) -> None:
    """Send a failure through --notify (Apprise); a notice that fails is a WARNING line."""
    if not job.notify:
        return
    import socket

    from tiffin.tell import notices

    title = f"Binlog archive result for {socket.gethostname()}: FAILED"
    for warning in notices.send(job.notify, title, f"{line}\n\nArchive: {where}", "FAILED"):
        out(warning)


@command("binlog", "archive a MySQL/MariaDB server's binary logs: HOW WHERE [PATH] [--follow]")
def cmd_binlog(args: list[str], values: dict[str, Any]) -> int:
    from tiffin import config

    config.load_env_files(values.get("env_file") or ())  # a scheduled job's secrets
    return run_binlog(binlog_job(args, values))


def run_binlog(job: BinlogJob) -> int:
    """Given a binlog job, ship once (or follow until SIGTERM) and report. Raise BinlogFailed
    if it fails (metrics say so first)."""
    from tiffin.catalog.binlogs import archive_url
    from tiffin.engine import binlogship

    where = archive_url(job.target, job.label).redacted()
    started = time.time()

    def shipped(done: binlogship.Pass) -> None:
        for a in done.shipped:
            out(f"Archived {a.log} ({a.size} bytes stored, last event {a.last_time}) at {where}.")

    def told(done: binlogship.Pass) -> None:
        shipped(done)
        if done.shipped and (job.metrics_file or job.pushgateway):
            _record(job, True, started, done.shipped[-1].size)

    stop: threading.Event | None = None
    if job.follow:
        stop = threading.Event()

        def stopping(signum: int, frame: object) -> None:
            assert stop is not None
            if stop.is_set():  # a second signal: stop now
                raise KeyboardInterrupt
            stop.set()

        signal.signal(signal.SIGTERM, stopping)
        signal.signal(signal.SIGINT, stopping)
        if not job.quiet:
            err(f"tiffin: following the binary logs into {where} (lag at most {job.max_lag:g} s)")
    try:
        done = binlogship.run(job, stop, told)
    except TiffinError as exc:
        if isinstance(exc, UsageError):
            raise
        _record(job, False, started, None)
        failed = BinlogFailed(exc)
        _notify(job, where, failure_line("Binlog archive", failed))
        raise failed from exc
    if stop is not None:
        out(f"Binlog archive stopped; every closed log is stored at {where}.")
        return ExitStatus.OK
    shipped(done)
    if done.shipped:
        n = len(done.shipped)
        out(f"Binlog archive completed: {n} log{'s' * (n != 1)}, {done.size} bytes stored.")
    else:
        newest = f" (up to {done.newest})" if done.newest else ""
        out(f"Binlog archive completed: nothing new to ship{newest}.")
    _record(job, True, started, done.size)
    return ExitStatus.OK


def schedule_binlog(args: list[str], values: dict[str, Any], when: str | None) -> int:
    """schedule binlog HOW WHERE [PATH] ...: --follow as a systemd service, else one-shot runs
    from cron (or --systemd timers), every 15 minutes unless --at/--cron."""
    from tiffin.commands import binlogunit, schedule

    if values.get("kubernetes") or values.get("config"):
        raise UsageError("schedule binlog takes HOW WHERE [PATH] and options, not a config")
    job = binlog_job(args, values)
    plan = binlogunit.plan(job, jobargs.option_args(values, frozenset({"label"}), "binlog"))
    if job.follow:
        if not values.get("systemd") or when is not None:
            raise UsageError("binlog --follow runs all the time: schedule it with --systemd alone")
        lines = binlogunit.install_service(plan)
    else:
        install = schedule.schedule_systemd if values.get("systemd") else schedule.schedule_cron
        lines = install([plan], when)
    for line in lines:
        out(line)
    return ExitStatus.OK

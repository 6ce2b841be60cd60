"""`tiffin binlog HOW WHERE [PATH]`: archive a MySQL/MariaDB server's binary logs (SPEC §6)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping
from typing import Any

from tiffin import jobargs, options
from tiffin.catalog.naming import check_label, default_label
from tiffin.cli.registry import command, err, out
from tiffin.errors import ExitStatus, Failed, TiffinError, UsageError
from tiffin.job import BinlogJob, DBConn


class BinlogFailed(Failed):
    def __init__(self, reason: TiffinError | str) -> None:
        super().__init__("Binlog archive", reason)


def binlog_job(positional: list[str], values: Mapping[str, Any]) -> BinlogJob:
    """Given binlog's positionals (HOW WHERE [PATH], or URL) and option values, return its
    job. Raise UsageError if anything is malformed: nothing is contacted yet."""
    target, rest = jobargs.target_of(positional)
    if rest:
        raise UsageError(f"unexpected argument {rest[0]!r}")
    if values.get("max_lag") is not None and not values.get("follow"):
        raise UsageError("--max-lag is for --follow")
    spec = jobargs.source_spec("mysql", values)
    conn: DBConn = spec.conn
    metrics_file, gateway, urls = jobargs.watching(values)
    max_lag = values.get("max_lag")
    return BinlogJob(
        conn=conn,
        target=target,
        target_options=jobargs.target_options(values),
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


@command("binlog", "archive a MySQL/MariaDB server's binary logs: HOW WHERE [PATH] [--follow]")
def cmd_binlog(args: list[str], values: dict[str, Any]) -> int:
    from tiffin.catalog.binlogs import archive_url
    from tiffin.engine import binlogship

    job = binlog_job(args, values)
    where = archive_url(job.target, job.label).redacted()
    started = time.time()

    def told(done: binlogship.Pass) -> None:
        for a in done.shipped:
            out(f"Archived {a.log} ({a.size} bytes stored, last event {a.last_time}) at {where}.")
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
        raise BinlogFailed(exc) from exc
    if stop is not None:
        out(f"Binlog archive stopped; every closed log is stored at {where}.")
    else:
        for a in done.shipped:
            out(f"Archived {a.log} ({a.size} bytes stored, last event {a.last_time}) at {where}.")
        if done.shipped:
            n = len(done.shipped)
            out(f"Binlog archive completed: {n} log{'s' * (n != 1)}, {done.size} bytes stored.")
        else:
            newest = f" (up to {done.newest})" if done.newest else ""
            out(f"Binlog archive completed: nothing new to ship{newest}.")
        _record(job, True, started, done.size)
    return ExitStatus.OK

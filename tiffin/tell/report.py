"""What a run says: the seed's report line, then where, how long, and warnings; and the
Report context manager that prints, mails and pings it whatever happened."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from tiffin import __version__
from tiffin.errors import TiffinError, UsageError, failure_line, os_error_text
from tiffin.job import BackupJob, BackupResult

if TYPE_CHECKING:
    from tiffin.tell.notify import SmtpSettings

# The mail, ping, metrics and Apprise modules load where they are used: a run asked for none
# of them starts its dump without them (their checks here come first all the same).

# Variables whose values are secrets: never shown in a report, a mail or a note.
SECRET_VARS = (
    "TIFFIN_DB_PASSWORD",
    "TIFFIN_FTP_PASSWORD",
    "PGPASSWORD",
    "MYSQL_PWD",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
OK, WARNING, FAILED = "OK", "WARNING", "FAILED"


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def shrink_warning(result: BackupResult, min_ratio: float) -> str | None:
    """Return the WARNING line when this backup is under MIN_RATIO of the previous one."""
    prev = result.previous_size
    if prev and min_ratio > 0 and result.size < prev * min_ratio:
        return (
            f"WARNING: this backup ({result.size} bytes) is under {min_ratio:g} of the "
            f"previous one of {result.label} ({prev} bytes): check that nothing is missing."
        )
    return None


def success_lines(result: BackupResult, min_ratio: float) -> list[str]:
    """Given a backup's result, return the report's lines (the seed's line first)."""
    secs = max(result.seconds, 0.001)
    lines = [
        f"Backup {result.name} completed. Its (compressed) size is {result.size} bytes.",
        f"Stored at: {result.target}/{result.name}",
        f"Took: {result.seconds:.1f} s ({human(result.size / secs)}/s)",
    ]
    if result.consistency:
        lines.append(f"Consistency: {result.consistency}")
    if result.manifest and result.manifest.encryption:
        lines.append("Encrypted to: " + ", ".join(result.manifest.encryption))
    warn = shrink_warning(result, min_ratio)
    if warn:
        lines.append(warn)
    lines += [f"WARNING: {w}" for w in result.warnings]
    lines += [f"Pruned: {n}" for n in result.pruned]
    return lines


def status_of(lines: Iterable[str]) -> str:
    """Given a success report's lines, return OK, or WARNING if one of them warns."""
    return WARNING if any(line.startswith("WARNING:") for line in lines) else OK


def subject(host: str, status: str) -> str:
    return f"Backup result for {host}: {status}"


def source_text(job: BackupJob) -> str:
    """Given a job, return what it backs up, in words (no password)."""
    src = job.source
    if src.what == "data":
        return f"data: the folder {os.path.expanduser(src.dir)}"
    if src.what == "sqlite":
        return f"sqlite: the file {src.file}"
    dbs = ", ".join(src.databases) or "all databases"
    server = src.conn.socket or f"{src.conn.host or 'localhost'}:{src.conn.port or 'default port'}"
    return f"{src.what}: {dbs} on {server}"


def secrets_of(job: BackupJob, smtp: SmtpSettings | None) -> tuple[str, ...]:
    """Given a job and its SMTP settings, return every password they or the environment hold."""
    found = [job.target.password, job.source.conn.password, smtp.password if smtp else None]
    if job.pushgateway:
        from tiffin.tell import metrics

        found.append(metrics.gateway(job.pushgateway)[2])
    found += [os.environ.get(name) for name in SECRET_VARS]
    # Longer first, so that a password holding another one is hidden whole.
    return tuple(sorted({s for s in found if s and len(s) >= 3}, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str]) -> str:
    """Given a text and secrets, return the text with each secret replaced by ***."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def job_label(job: BackupJob) -> str:
    """Given a job, return its metrics' `job` label: the config job's name, else LABEL-WHAT."""
    from tiffin.tell import metrics

    return job.job_name or metrics.job_label(job.label, job.source.what)


def check(job: BackupJob) -> None:
    """Given a job, raise UsageError if its report could not go where asked: an address,
    TIFFIN_SMTP_URL, --ping-url, --metrics-file, --pushgateway or --notify that is malformed."""
    Report(job, lambda _: None, lambda _: None)


class Report:
    """The report of one backup job, made when its `with` block ends whatever happened in it:
    printed (on success; main prints the failure), pinged and mailed. Constructing it checks
    the addresses, TIFFIN_SMTP_URL and --ping-url: it raises UsageError before anything runs.
    The job's own error wins over a mail or ping that fails: those are only noted."""

    def __init__(
        self, job: BackupJob, out: Callable[[str], None], note: Callable[[str], None]
    ) -> None:
        self.job = job
        self.out = out
        self.note = note
        self.emails: tuple[str, ...] = ()
        self.smtp: SmtpSettings | None = None
        self.ping: str | None = None
        if job.emails or job.ping_url:
            from tiffin.tell import notify

            self.emails = notify.check_addresses(job.emails)
            self.smtp = notify.smtp_from_env() if self.emails else None
            self.ping = notify.check_ping_url(job.ping_url) if job.ping_url else None
        if job.metrics_file is not None or job.pushgateway is not None:
            from tiffin.tell import metrics

            metrics.check(job.metrics_file, job.pushgateway)
        if job.notify:
            from tiffin.tell import notices

            notices.check(job.notify)
        self.secrets = secrets_of(job, self.smtp)
        self.result: BackupResult | None = None
        self.status = FAILED
        self.started = datetime.now(UTC)
        self._t0 = time.monotonic()

    def __enter__(self) -> Report:
        self.started = datetime.now(UTC)
        self._t0 = time.monotonic()
        self._ping("start")
        return self

    def done(self, result: BackupResult) -> None:
        """Record the backup's result: the report is made from it when the block ends."""
        self.result = result

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc is None and self.result is not None:
            made = success_lines(self.result, self.job.min_ratio)
            lines = [redact(x, self.secrets) for x in made]
            for line in lines:
                self.out(line)
            self.status = status_of(lines)
            self._ping("")
        else:
            self.status = FAILED
            lines = [self.failure_text(exc)]
            self._ping("fail")
        if not isinstance(exc, UsageError):  # a run refused (exit 2) touches no metrics
            lines += self._watch(exc is None and self.result is not None, lines)
        self._mail(lines)
        return False  # the job's own error, if any, goes on to the caller

    def failure_text(self, exc: BaseException | None) -> str:
        """Given the job's error, return its FAILED line (the dump tool's lines included)."""
        what = f"Backup of {self.job.source.what} to {self.target}"
        subject = (exc.subject if isinstance(exc, TiffinError) else None) or what
        if exc is None:
            reason = "it ended without a result"
        elif isinstance(exc, KeyboardInterrupt):
            reason = "interrupted; stopped and cleaned up, nothing was published"
        elif isinstance(exc, TiffinError):
            reason = str(exc)
        elif isinstance(exc, OSError):
            reason = os_error_text(exc)
        else:
            reason = f"unexpected error: {type(exc).__name__}: {exc}"
        return redact(failure_line(subject, reason), self.secrets)

    @property
    def target(self) -> str:
        return self.job.target.redacted()

    def body(self, lines: list[str]) -> str:
        """Given the report's lines, return the mail's body: them, then the run's details."""
        seconds = time.monotonic() - self._t0
        details = [
            f"Host: {self.job.label}",
            f"Source: {source_text(self.job)}",
            f"Target: {self.target} (credentials removed)",
            f"Started: {self.started.strftime('%Y-%m-%d %H:%M:%S UTC')}",
            f"Duration: {seconds:.1f} s",
        ]
        text = "\n".join([*lines, "", *details, "", "-- ", f"tiffin {__version__}"]) + "\n"
        return redact(text, self.secrets)

    def _watch(self, ok: bool, lines: list[str]) -> list[str]:
        """Record the run's metrics, then send the report through Apprise; print and return
        the WARNING lines of what failed (the mail carries them)."""
        if not self.job.metrics_file and not self.job.pushgateway and not self.job.notify:
            return []  # nothing to record or send: the modules that would do it stay unloaded
        from tiffin.tell import metrics

        outcome = metrics.Outcome(
            kind=metrics.BACKUP,
            job=job_label(self.job),
            what=self.job.source.what,
            target=self.target,
            ok=ok,
            finished=time.time(),
            duration=time.monotonic() - self._t0,
            size=self.result.size if ok and self.result else None,
        )
        warned = metrics.record(outcome, self.job.metrics_file, self.job.pushgateway)
        if self.job.notify:
            from tiffin.tell import notices

            warned += notices.send(
                self.job.notify,
                subject(self.job.label, self.status),
                self.body([*lines, *warned]),
                self.status,
                self.secrets,
            )
        warned = [redact(x, self.secrets) for x in warned]
        for line in warned:
            self.out(line)
        return warned

    def _mail(self, lines: list[str]) -> None:
        if not self.emails:
            return
        host = self.job.label
        sender = os.environ.get("TIFFIN_MAIL_FROM") or f"tiffin@{host}"
        from tiffin.tell import notify

        try:
            msg = notify.message(
                subject(host, self.status), sender, self.emails, self.body(lines), host
            )
            notify.send(msg, self.smtp, self.job.target_options.insecure)
        except Exception as exc:  # a mail never hides the job's own result
            why = redact(str(exc), self.secrets)
            self.note(f"tiffin: could not send the report to {', '.join(self.emails)}: {why}")

    def _ping(self, suffix: str) -> None:
        if not self.ping:
            return
        from tiffin.tell import notify

        try:
            notify.ping(self.ping, suffix)
        except Exception as exc:  # a ping never fails the backup
            what = {"start": "start", "fail": "failure"}.get(suffix, "success")
            self.note(f"tiffin: could not send the {what} ping: {redact(str(exc), self.secrets)}")

"""Metrics of a run for Prometheus (SPEC §7): a textfile for node_exporter's collector, and a
push to a Pushgateway. Neither ever changes a run's outcome: a failure is a WARNING line.

The textfile is shared: many jobs (and wal-push, binlog) write one file. Each write takes an
flock on `.NAME.lock` beside it, reads the file, replaces only the series of this job, WHAT
and target that this run sets, keeps every other line as it was (other jobs, other tools),
and replaces the file atomically (tiffin.engine.safefile.write_new), mode 0644 so that
node_exporter, running as its own user, can read it. A failed run keeps the last success's
timestamp and size: it sets only what a failure says.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tiffin.engine import safefile
from tiffin.errors import TiffinError, UsageError
from tiffin.urls import host_text, redact, split_url

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

# prometheus_client is imported when a run is recorded, not by every run that loads this
# module: wal-push starts once per WAL segment, and the library takes ~0.2 s to import.

BACKUP, DRILL, ARCHIVE = "backup", "drill", "archive"
LABELS = ("job", "what", "target")
LOCK_WAIT = 30.0  # seconds a writer waits for another one before giving up with a warning
PUSH_TIMEOUT = 10.0
FILE_MAX = 16 << 20  # a metrics file someone made huge is not read whole into memory

# name: help. Which a run sets: its kind's names; on success also its SUCCESS names.
HELP = {
    "tiffin_last_run_timestamp_seconds": "End of the last backup run, Unix seconds.",
    "tiffin_last_success_timestamp_seconds": "End of the last successful backup, Unix seconds.",
    "tiffin_last_status": "Whether the last backup run succeeded: 1 done, 0 failed.",
    "tiffin_last_duration_seconds": "How long the last backup run took, in seconds.",
    "tiffin_last_size_bytes": "Size of the last successful backup as stored, in bytes.",
    "tiffin_drill_last_run_timestamp_seconds": "End of the last drill, Unix seconds.",
    "tiffin_drill_last_success_timestamp_seconds": "End of the last passed drill, Unix seconds.",
    "tiffin_drill_last_status": "Whether the last drill passed: 1 passed, 0 failed.",
    "tiffin_archive_last_push_timestamp_seconds": "End of the last archive push, Unix seconds.",
    "tiffin_archive_last_file_timestamp_seconds": "End of the last archived file, Unix seconds.",
    "tiffin_archive_last_status": "Whether the last archive push succeeded: 1 done, 0 failed.",
    "tiffin_archive_last_size_bytes": "Size of the last archived file as stored, in bytes.",
}
PREFIX = {BACKUP: "tiffin_last_", DRILL: "tiffin_drill_last_", ARCHIVE: "tiffin_archive_last_"}


@dataclass(frozen=True)
class Outcome:
    """One run to record. KIND: BACKUP, DRILL or ARCHIVE (wal-push, binlog); JOB: the config
    job's name, else job_label(); TARGET: a URL without password; FINISHED: Unix seconds at
    the end of the run; SIZE: bytes stored, if known."""

    kind: str
    job: str
    what: str
    target: str
    ok: bool
    finished: float
    duration: float
    size: int | None = None

    def values(self) -> dict[str, float]:
        """Return the series this run sets, by name (a failure sets no success series)."""
        pre = PREFIX[self.kind]
        archive = self.kind == ARCHIVE
        got: dict[str, float] = {
            pre + ("push" if archive else "run") + "_timestamp_seconds": self.finished,
            pre + "status": 1.0 if self.ok else 0.0,
            pre + "duration_seconds": self.duration,
        }
        if self.ok:
            got[pre + ("file" if archive else "success") + "_timestamp_seconds"] = self.finished
            if self.size is not None:
                got[pre + "size_bytes"] = float(self.size)
        # Only the names in HELP exist: a drill has no size, only a backup a duration series.
        return {k: v for k, v in got.items() if k in HELP}

    def labels(self) -> dict[str, str]:
        return {"job": self.job, "what": self.what, "target": self.target}


def job_label(label: str, what: str) -> str:
    """Given a command-line run's label and WHAT, return its `job` label: LABEL-WHAT."""
    return f"{label}-{what}"


def check(metrics_file: str | None, pushgateway: str | None) -> None:
    """Given --metrics-file and --pushgateway (either None), raise UsageError if the file's
    folder does not exist or the gateway is no http(s) URL with a host. Touches nothing."""
    if metrics_file is not None:
        folder = os.path.dirname(os.path.abspath(os.path.expanduser(metrics_file)))
        if not metrics_file or metrics_file.endswith("/") or not os.path.isdir(folder):
            raise UsageError(
                f"--metrics-file {metrics_file!r}: name a file in an existing folder, e.g. "
                "/var/lib/prometheus/node-exporter/tiffin.prom"
            )
    if pushgateway is not None:
        gateway(pushgateway)


def gateway(url: str) -> tuple[str, str | None, str | None]:
    """Given --pushgateway, return (URL without user and password, user, password). Raise
    UsageError, quoting no secret, unless it is an http:// or https:// URL with a host."""
    parts = split_url(url, "--pushgateway")
    if parts.scheme not in ("http", "https") or not parts.host:
        raise UsageError(f"--pushgateway {redact(url)!r} must be an http:// or https:// URL")
    port = f":{parts.port}" if parts.port else ""
    bare = f"{parts.scheme}://{host_text(parts.host)}{port}{parts.path.rstrip('/')}"
    return bare, parts.user, parts.password


def record(outcome: Outcome, metrics_file: str | None, pushgateway: str | None) -> list[str]:
    """Given a run's outcome, write it to METRICS_FILE and push it to PUSHGATEWAY (either
    None: skipped). Return the WARNING lines of what failed; never raise for it."""
    warnings: list[str] = []
    if metrics_file:
        try:
            warnings += write_file(metrics_file, outcome)
        except (OSError, TiffinError) as exc:
            warnings.append(
                f"WARNING: could not write the metrics file {metrics_file}: {_why(exc)}"
            )
    if pushgateway:
        try:
            push(pushgateway, outcome)
        except Exception as exc:  # a push never fails the run, whatever urllib raises
            shown = redact(pushgateway)
            _, _, password = _gateway_or_none(pushgateway)
            why = _why(exc).replace(password, "***") if password else _why(exc)
            warnings.append(f"WARNING: could not push the metrics to {shown}: {why}")
    return warnings


def _gateway_or_none(url: str) -> tuple[str, str | None, str | None]:
    try:
        return gateway(url)
    except UsageError:
        return "", None, None


def _why(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return _why(reason)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the Pushgateway running?)"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# ---------------------------------------------------------------- the textfile


def _name_of(line: str) -> str:
    """Given a line of the text format, return the metric name it is about ("" if none)."""
    if line.startswith("#"):
        words = line.split(None, 3)
        return words[2] if len(words) > 2 and words[1] in ("HELP", "TYPE") else ""
    words = line.split("{", 1)[0].split(None, 1)
    return words[0] if words else ""  # a blank line, or one starting with "{"


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)')
Key = tuple[tuple[str, str], ...]  # a sample's labels as written (values escaped), sorted


def _key(line: str) -> Key | None:
    """Given a sample line, return its labels if it is one as tiffin writes them: the three
    LABELS, a value that is a number, no timestamp. Else None."""
    match = _SAMPLE.match(line)
    if match is None:
        return None
    text, pos, found = match.group(2), 0, {}
    while pos < len(text):
        label = _LABEL.match(text, pos)
        if label is None:
            return None
        found[label.group(1)] = label.group(2)
        pos = label.end()
    try:
        float(match.group(3))
    except ValueError:
        return None
    return tuple(sorted(found.items())) if set(found) == set(LABELS) else None


def merge(old: str, outcome: Outcome) -> tuple[str, list[str]]:
    """Given a metrics file's text and a run, return the new text and warnings: the run's
    series set, every other series and line kept as it was. Pure.

    The run's lines are written by prometheus_client; the other tiffin lines are moved
    under their family's HELP and TYPE as they are, once checked to be what tiffin writes
    (a regular expression, not a parse: ~0.8 ms a job with the library's parser was the
    whole cost of a file that a few hundred jobs share)."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    key = tuple(outcome.labels()[k] for k in LABELS)
    made = generate_latest(_registry({(n, key): v for n, v in outcome.values().items()}))
    fresh = [x for x in made.decode("utf-8").split("\n") if x and not x.startswith("#")]
    families: dict[str, dict[Key, str]] = {}
    kept: list[str] = []
    warnings: list[str] = []
    for line in old.split("\n"):  # not splitlines(): \x1e, \x85 … end no line here
        name = _name_of(line)
        if name not in HELP:
            kept.append(line)
        elif not line.startswith("#"):  # HELP and TYPE are written anew
            labels = _key(line)
            if labels is None:
                warnings = [
                    "WARNING: the metrics file held tiffin lines it could not read: dropped"
                ]
            else:
                families.setdefault(name, {})[labels] = line
    for line in fresh:  # this run's replace its own, kept in the old file
        families.setdefault(_name_of(line), {})[_key(line) or ()] = line
    text = "\n".join(kept).strip("\n")
    try:  # other lines that do not parse would make node_exporter drop the whole file
        for _ in text_string_to_metric_families(text + "\n"):
            pass
    except ValueError:
        warnings.append("WARNING: the metrics file held lines not in the text format: dropped")
        text = ""
    out = [text] if text else []
    for name in sorted(families):
        out += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} gauge"]
        out += [families[name][k] for k in sorted(families[name])]
    return "\n".join(out) + "\n", warnings


def _registry(series: dict[tuple[str, tuple[str, ...]], float]) -> CollectorRegistry:
    """Given {(name, label values): value}, return a registry holding them as gauges."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry(auto_describe=False)
    gauges: dict[str, Gauge] = {}
    for (name, labels), value in sorted(series.items()):
        if name not in gauges:
            gauges[name] = Gauge(name, HELP[name], LABELS, registry=registry)
        gauges[name].labels(*labels).set(value)
    return registry


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """Hold the flock of PATH's lock file (`.NAME.lock` beside it) for the block, waiting
    LOCK_WAIT seconds at most for another writer. Raise OSError or Planted if it cannot."""
    lock = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".lock")
    fd = safefile.open_lock(lock)
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def write_file(metrics_file: str, outcome: Outcome) -> list[str]:
    """Given a metrics file and a run, merge the run into it under its lock (see the module's
    docstring) and return warnings. Raise OSError or Planted if it cannot be written."""
    path = os.path.abspath(os.path.expanduser(metrics_file))
    with _locked(path):
        try:
            with open(path, "rb") as f:
                raw = f.read(FILE_MAX + 1)
        except FileNotFoundError:
            raw = b""
        warnings: list[str] = []
        if len(raw) > FILE_MAX:
            raw = b""
            warnings.append(f"WARNING: the metrics file was over {FILE_MAX >> 20} MiB: replaced")
        text, more = merge(raw.decode("utf-8", "replace"), outcome)
        safefile.write_new(path, text.encode("utf-8"), 0o644)
        return warnings + more


# ---------------------------------------------------------------- the Pushgateway


def push(pushgateway: str, outcome: Outcome) -> None:
    """Given --pushgateway and a run, add the run's series to the gateway's group of its job,
    WHAT and target (POST: a failure leaves the last success's series there). Raise on
    any failure to reach it or an answer that is not 2xx."""
    from prometheus_client.exposition import (
        basic_auth_handler,
        default_handler,
        pushadd_to_gateway,
    )

    url, user, password = gateway(pushgateway)
    key = tuple(outcome.labels()[k] for k in LABELS)
    registry = _registry({(name, key): value for name, value in outcome.values().items()})

    def handler(
        url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        if user is None:
            return default_handler(url, method, timeout, headers, data)
        return basic_auth_handler(url, method, timeout, headers, data, user, password or "")

    pushadd_to_gateway(
        url,
        job=outcome.job,
        registry=registry,
        grouping_key={"what": outcome.what, "target": outcome.target},
        timeout=PUSH_TIMEOUT,
        handler=handler,
    )

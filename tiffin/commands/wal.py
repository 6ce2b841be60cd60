"""wal-push and wal-fetch: PostgreSQL's archive_command and restore_command (SPEC §6).

PostgreSQL runs one command per file, one after another, and a Python process takes tens of
milliseconds to start: alone, that caps the rate a backlog drains or a recovery replays. So,
as pgBackRest's asynchronous mode does, a call that finds no one working ahead leads: it
starts a helper process (walahead, holding the spool's lock while it lives) and does its own
file meanwhile.
- wal-push's helper pushes the other `.ready` files (archive_status), each stored and read
  back checked, and records each beside pg_wal (walspool). PostgreSQL's call for one of them
  finds the record of that very file and exits 0, or waits while the helper is at it. A file
  is never reported archived before it is stored and checked: a record is written only
  after that; a call whose record is missing, stale or marked failed does its own push.
- wal-fetch's helper fetches the next segments of the timeline into a spool beside pg_wal,
  each checked against its sha256 before it lands there, while PostgreSQL replays; the call
  for one renames it into place, or waits while the helper is at it. While it lives, the
  helper also answers the calls for files it did not fetch ahead (a history, a file past
  the archive's end, a segment asked again) through its open connection (walserve), so
  that only the first call of a recovery loads the whole of tiffin.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from tiffin.catalog import walnames
from tiffin.commands import walahead
from tiffin.commands.walahead import Targets
from tiffin.commands.walspool import KEY, FetchSpool, PushSpool, detach, settle
from tiffin.engine import archive
from tiffin.errors import BackupFailed, NotFound, TiffinError
from tiffin.job import TargetOptions, TargetURL
from tiffin.tell import metrics

AHEAD = 16  # files a call pushes or fetches beyond its own
JOBS = 2  # transfers at once


@dataclass(frozen=True)
class WalJob:
    """One call from PostgreSQL. PATH: wal-push's %p, or wal-fetch's %p (where to write);
    NAME: wal-fetch's %f."""

    target: TargetURL
    label: str
    path: str
    name: str = ""
    options: TargetOptions = field(default_factory=TargetOptions)
    ahead: int = AHEAD
    jobs: int = JOBS
    key: str = ""  # names this archive in the spools: walask.key_of()
    metrics_file: str | None = None
    pushgateway: str | None = field(default=None, repr=False)
    job_name: str = ""


class WalFailed(BackupFailed):
    """A WAL file could not be archived or restored."""

    def __init__(self, subject: str, reason: object) -> None:
        super().__init__(str(reason))
        self.subject = subject


def _targets(job: WalJob) -> Targets:
    return Targets(archive.folder(job.target, job.label), job.options)


def push(
    job: WalJob, lock: int | None = None, settled: bool = False, done: bool = False
) -> archive.Pushed | None:
    """Given a wal-push call, archive its file, checked; when it leads (it holds the spool's
    LOCK, or takes it), start a helper that pushes the other ready files. Return what was
    pushed (None: a helper pushed it, stored and checked). SETTLED: the lean entry has
    waited for a helper already. Raise WalFailed (exit 1) if the file is not archived with
    these bytes. DONE: the lean entry found it pushed by a helper (only metrics to record)."""
    name = os.path.basename(job.path)
    subject = f"Archiving {name}"
    started = time.time()
    try:
        st = os.stat(job.path)
        archive.check_walname(name)
    except OSError as exc:
        raise WalFailed(subject, f"cannot read {job.path}: {exc.strerror}") from None
    except TiffinError as exc:
        raise WalFailed(subject, exc) from None
    spool = PushSpool(job.path, job.key)
    if not settled:
        done, lock = settle(
            spool, lambda: spool.take(name, st), lambda: not spool.failed(name), job.options.timeout
        )
    if done:
        _record(job, True, started, None)
        return None
    if lock is not None:
        if job.ahead > 0:
            conns = _targets(job)
            work = walahead.in_helper(lambda: walahead.push_ahead(conns, spool, name, job.jobs))
            detach(work, lock)
        else:
            os.close(lock)
    conns = _targets(job)
    try:
        result = archive.push(conns.get(), job.path)
    except (TiffinError, OSError) as exc:
        _record(job, False, started, None)
        why = exc if isinstance(exc, TiffinError) else exc.strerror or exc
        raise WalFailed(subject, why) from None
    finally:
        conns.close()
    _record(job, True, started, result.stored_size)
    return result


def _record(job: WalJob, ok: bool, started: float, size: int | None) -> None:
    if not job.metrics_file and not job.pushgateway:
        return
    now = time.time()
    outcome = metrics.Outcome(
        metrics.ARCHIVE,
        job.job_name or metrics.job_label(job.label, "pgsql"),
        "pgsql",
        job.target.redacted(),
        ok,
        now,
        now - started,
        size,
    )
    for line in metrics.record(outcome, job.metrics_file, job.pushgateway):
        print(line, flush=True)  # noqa: T201 - the report's WARNING line, as a backup's


def fetch(job: WalJob, lock: int | None = None, settled: bool = False) -> str:
    """Given a wal-fetch call, write the archived file NAME at PATH once checked; when it
    leads (it holds the spool's LOCK, or takes it), start a helper that fetches the next
    segments into the spool. Return where the file came from ("spool" or "archive"). Raise
    WalFailed if it is not in the archive (at once, no retry: PostgreSQL asks for files past
    the end) or does not check."""
    subject = f"Restoring {job.name}"
    try:
        archive.check_walname(job.name)
    except TiffinError as exc:
        raise WalFailed(subject, exc) from None
    spool = FetchSpool(job.path, job.key)
    if not settled:
        done, lock = settle(
            spool,
            lambda: spool.take(job.name, job.path),
            lambda: spool.planned(job.name),
            job.options.timeout,
        )
        if done:
            return "spool"
    leading = lock is not None
    if lock is not None:
        if job.ahead > 0 and spool.usable():
            seg_size = _seg_size(job)
            spool.prune(set(after(job.name, walahead.SPOOL_MAX, seg_size)) | {KEY})
            spool.forget_failures()
            conns = _targets(job)
            work = walahead.in_helper(
                lambda: walahead.fetch_ahead(conns, spool, job.name, seg_size, job.jobs)
            )
            detach(work, lock)
        else:
            os.close(lock)
    conns = _targets(job)
    try:
        archive.fetch(conns.get(), job.name, job.path)
    except NotFound as exc:
        if not leading:
            spool.clear()  # no helper: what the spool holds leads nowhere now
        raise WalFailed(subject, exc) from None
    except (TiffinError, OSError) as exc:
        why = exc if isinstance(exc, TiffinError) else exc.strerror or exc
        raise WalFailed(subject, why) from None
    finally:
        conns.close()
    return "archive"


def _seg_size(job: WalJob) -> int:
    """The segment size of the cluster being restored: that of a segment already in pg_wal,
    else 16 MiB (names ahead of a log boundary are then only guessed wrong, never trusted)."""
    try:
        for entry in os.scandir(os.path.dirname(job.path) or "."):
            if walnames.parse(entry.name) is not None and entry.name.isalnum():
                size = entry.stat().st_size
                walnames.check_seg_size(size)
                return size
    except (OSError, ValueError):
        pass
    return walnames.DEFAULT_SEG_SIZE


def after(name: str, most: int, seg_size: int = walnames.DEFAULT_SEG_SIZE) -> list[str]:
    """Given a segment's name, return the names of the MOST segments after it on its timeline
    (none for other kinds of WAL file)."""
    f = walnames.parse(name)
    segno = f.segno(seg_size) if f is not None and f.kind == walnames.SEGMENT else None
    if f is None or segno is None:
        return []
    return [walnames.segment_name(f.tli, segno + i, seg_size) for i in range(1, most + 1)]

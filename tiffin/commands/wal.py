"""wal-push and wal-fetch: PostgreSQL's archive_command and restore_command (SPEC §6).

PostgreSQL runs one command per file, one after another, and a Python process takes tens of
milliseconds to start: alone, that caps the rate a backlog drains or a recovery replays. So
each call that has work to do also does the next files' work, in parallel threads, each
with its own connection to the target:
- wal-push stores its file and the next `.ready` ones (archive_status), each stored and read
  back checked, and records each of those beside pg_wal (walspool); PostgreSQL's later call
  for one of them finds the record of that very file and exits 0 at once. A file is never
  reported archived before it is stored and checked: a record is written only after that,
  and a call whose record is missing or stale pushes (or compares) for itself.
- wal-fetch restores its file and fetches the next segments of its timeline into a spool
  beside pg_wal, each checked against its sha256 before it lands there; the later call
  renames it into place.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from tiffin.catalog import walnames
from tiffin.commands.walspool import FetchSpool, PushSpool
from tiffin.engine import archive
from tiffin.errors import BackupFailed, NotFound, TiffinError
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets import Target, make_target
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
    key: str = ""  # names this archive in the spools: walspool.key_of()
    metrics_file: str | None = None
    pushgateway: str | None = field(default=None, repr=False)
    job_name: str = ""


class WalFailed(BackupFailed):
    """A WAL file could not be archived or restored."""

    def __init__(self, subject: str, reason: object) -> None:
        super().__init__(str(reason))
        self.subject = subject


class _Targets:
    """One connection to the archive per thread, made when a thread first needs it."""

    def __init__(self, url: TargetURL, options: TargetOptions) -> None:
        self.url, self.options = url, options
        self._local = threading.local()
        self._all: list[Target] = []
        self._lock = threading.Lock()

    def get(self) -> Target:
        target: Target | None = getattr(self._local, "target", None)
        if target is None:
            target = make_target(self.url, self.options)
            self._local.target = target
            with self._lock:
                self._all.append(target)
        return target

    def close(self) -> None:
        for target in self._all:
            try:
                target.close()
            except Exception:  # noqa: S110 - closing never hides the outcome
                pass


def _targets(job: WalJob) -> _Targets:
    return _Targets(archive.folder(job.target, job.label), job.options)


def _run_all(
    job: WalJob, first: Callable[[Target], object], rest: list[Callable[[Target], object]]
) -> object:
    """Run FIRST and REST in JOB.jobs threads, FIRST first; wait for all; return FIRST's result
    or raise its error. The errors of REST are dropped: their files are done again later."""
    conns = _targets(job)
    try:
        if not rest:
            return first(conns.get())
        with ThreadPoolExecutor(max_workers=max(1, job.jobs)) as pool:
            mine: Future[object] = pool.submit(lambda: first(conns.get()))
            for fn in rest:
                pool.submit(_quietly, conns, fn)
            return mine.result()
    finally:
        conns.close()


def _quietly(conns: _Targets, fn: Callable[[Target], object]) -> None:
    try:
        fn(conns.get())
    except (TiffinError, OSError):
        pass


def push(job: WalJob) -> archive.Pushed | None:
    """Given a wal-push call, archive its file, checked, and the next ready ones. Return what
    was pushed (None: it was pushed ahead by an earlier call, stored and checked). Raise
    WalFailed (exit 1) if the file is not archived with these bytes."""
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
    result: archive.Pushed | None = None
    try:
        if not spool.take(name, st):
            ahead = [n for n in spool.ready(name, job.ahead) if walnames.parse(n) is not None]
            rest = [_push_ahead(spool, n) for n in ahead]
            got = _run_all(job, lambda t: archive.push(t, job.path), rest)
            assert isinstance(got, archive.Pushed)
            result = got
    except (TiffinError, OSError) as exc:
        _record(job, False, started, None)
        why = exc if isinstance(exc, TiffinError) else exc.strerror or exc
        raise WalFailed(subject, why) from None
    _record(job, True, started, result.stored_size if result else None)
    return result


def _push_ahead(spool: PushSpool, name: str) -> Callable[[Target], object]:
    def run(target: Target) -> None:
        path = os.path.join(spool.wal_dir, name)
        before = os.stat(path)
        archive.push(target, path)
        spool.record(name, before)

    return run


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


def fetch(job: WalJob) -> str:
    """Given a wal-fetch call, write the archived file NAME at PATH once checked, fetching the
    next segments ahead. Return how it was found ("spool" or "archive"). Raise WalFailed if it
    is not in the archive (at once, no retry: PostgreSQL asks for files past the end) or does
    not check."""
    subject = f"Restoring {job.name}"
    try:
        archive.check_walname(job.name)
    except TiffinError as exc:
        raise WalFailed(subject, exc) from None
    spool = FetchSpool(job.path, job.key)
    if spool.take(job.name, job.path):
        return "spool"
    ahead = []
    if job.ahead > 0 and spool.usable():
        ahead = [n for n in after(job.name, job.ahead, _seg_size(job)) if not spool.holds(n)]
    try:
        _run_all(
            job,
            lambda t: archive.fetch(t, job.name, job.path),
            [_fetch_ahead(spool, n) for n in ahead],
        )
    except NotFound as exc:
        spool.clear()  # the end of the archive, or another timeline: what is ahead is not
        raise WalFailed(subject, exc) from None
    except (TiffinError, OSError) as exc:
        why = exc if isinstance(exc, TiffinError) else exc.strerror or exc
        raise WalFailed(subject, why) from None
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


def _fetch_ahead(spool: FetchSpool, name: str) -> Callable[[Target], object]:
    def run(target: Target) -> None:
        archive.fetch(target, name, spool.path(name))

    return run


def after(name: str, most: int, seg_size: int = walnames.DEFAULT_SEG_SIZE) -> list[str]:
    """Given a segment's name, return the names of the MOST segments after it on its timeline
    (none for other kinds of WAL file)."""
    f = walnames.parse(name)
    segno = f.segno(seg_size) if f is not None and f.kind == walnames.SEGMENT else None
    if f is None or segno is None:
        return []
    return [walnames.segment_name(f.tli, segno + i, seg_size) for i in range(1, most + 1)]

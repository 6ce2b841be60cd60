"""The work wal-push and wal-fetch do ahead of PostgreSQL's calls, in a helper process that
holds the spool's lock (walspool.detach): pushing the files marked .ready, or fetching the
next segments of the timeline into the spool. Each helper uses JOBS threads, each with its
own connection to the archive."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from tiffin.catalog import walnames
from tiffin.commands.walserve import Server
from tiffin.commands.walspool import FetchSpool, PushSpool
from tiffin.engine import archive
from tiffin.errors import TiffinError
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets import Target, make_target

SPOOL_MAX = 8  # segments a fetch helper keeps fetched ahead (128 MiB of 16 MiB segments)
IDLE = 30.0  # seconds a fetch helper waits for PostgreSQL to take a file, then clears and ends


class Targets:
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


def push_ahead(conns: Targets, spool: PushSpool, skip: str, jobs: int) -> None:
    """Push every file PostgreSQL marks .ready (but SKIP, which the caller pushes), a batch at
    a time, listing again after each, until none is left; record each stored and checked,
    mark each that failed."""
    spool.forget_failures()
    tried = {skip}

    def one(name: str) -> None:
        path = os.path.join(spool.wal_dir, name)
        try:
            before = os.stat(path)
            archive.push(conns.get(), path)
        except (TiffinError, OSError):
            spool.mark_failed(name)
            return
        spool.record(name, before)

    # One more thread than transfers: a thread waiting on the disk (fsync) or the network
    # leaves the CPU to the others. Files are handed out as threads come free, listing
    # again each time, so that no thread waits for a batch's slowest file.
    workers = max(1, jobs) + 1
    inflight: set[Future[None]] = set()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while True:
            if len(inflight) < workers:
                names = [
                    n
                    for n in spool.ready(skip, 1 << 16)
                    if n not in tried and walnames.parse(n) is not None
                ][: workers - len(inflight)]
                tried.update(names)
                inflight.update(pool.submit(one, n) for n in names)
            if not inflight:
                return
            _, pending = wait(inflight, return_when=FIRST_COMPLETED)
            inflight = set(pending)


class FetchAhead:
    """Fetches the segments after FIRST on its timeline into the spool, keeping SPOOL_MAX
    there, until one is not in the archive (its end), one fails, or PostgreSQL takes none
    for IDLE seconds. The plan names what is being fetched; a failure is marked. restart()
    moves it to the segments after another (a call answered by the helper's server)."""

    def __init__(self, conns: Targets, spool: FetchSpool, first: str, seg_size: int) -> None:
        self.conns, self.spool, self.seg_size = conns, spool, seg_size
        self._last = first
        self._lock = threading.Lock()
        self._restart: str | None = None
        self._inflight: dict[Future[object], str] = {}
        self.server: Server | None = None  # answers calls while the helper lives

    def restart(self, name: str) -> None:
        """Fetch the segments after NAME from now on (a segment asked for: PostgreSQL reads
        on from there); names of other kinds change nothing."""
        if next_segment(name, self.seg_size) is not None:
            with self._lock:
                self._restart = name

    def in_flight(self, name: str) -> bool:
        with self._lock:
            return name in self._inflight.values()

    def _asked(self) -> int:
        return self.server.asked if self.server is not None else 0

    def run(self, jobs: int) -> None:
        planned: list[str] = []
        stop = False
        idle_since = time.monotonic()
        seen = (-1, -1)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            while True:
                with self._lock:
                    if self._restart is not None:
                        self._last, self._restart, stop = self._restart, None, False
                held = self.spool.count()
                if (held, self._asked()) != seen:
                    idle_since, seen = time.monotonic(), (held, self._asked())
                while not stop and held + len(self._inflight) < SPOOL_MAX:
                    nxt = next_segment(self._last, self.seg_size)
                    if nxt is None:
                        stop = True
                        break
                    self._last = nxt
                    if nxt in planned:  # restarted behind what was planned before
                        if self.spool.failed(nxt):
                            stop = True  # the archive's end, or a file that failed
                        continue
                    planned = [*planned[-4 * SPOOL_MAX :], nxt]
                    self.spool.plan(planned)
                    if self.spool.holds(nxt):  # fetched by an earlier helper, not taken yet
                        continue
                    future = pool.submit(_fetch_one, self.conns, self.spool, nxt)
                    with self._lock:
                        self._inflight[future] = nxt
                if not self._inflight:
                    serving = self.server is not None
                    if time.monotonic() - idle_since > IDLE:
                        # PostgreSQL took nothing for that long (recovery ended, or went
                        # another way): what is left here would lie in pg_wal for ever.
                        self.spool.clear()
                        return
                    if stop and not serving:
                        return
                    time.sleep(0.01)
                    continue
                done, _ = wait(list(self._inflight), timeout=0.05, return_when=FIRST_COMPLETED)
                for future in done:
                    with self._lock:
                        name = self._inflight.pop(future)
                    if future.exception() is not None:
                        self.spool.mark_failed(name)
                        stop = True


def fetch_ahead(conns: Targets, spool: FetchSpool, first: str, seg_size: int, jobs: int) -> None:
    """Run a FetchAhead from FIRST, and a walserve.Server answering wal-fetch calls while it
    lives (none if its socket cannot be made)."""
    ahead = FetchAhead(conns, spool, first, seg_size)
    server = Server(spool, conns, ahead.restart, ahead.in_flight)
    if server.start():
        ahead.server = server
    try:
        ahead.run(jobs)
    finally:
        server.close()


def _fetch_one(conns: Targets, spool: FetchSpool, name: str) -> object:
    return archive.fetch(conns.get(), name, spool.path(name))


def next_segment(name: str, seg_size: int) -> str | None:
    """Given a segment's name, return the next segment's on its timeline (None for others)."""
    f = walnames.parse(name)
    segno = f.segno(seg_size) if f is not None and f.kind == walnames.SEGMENT else None
    if f is None or segno is None:
        return None
    return walnames.segment_name(f.tli, segno + 1, seg_size)


def in_helper(run: Callable[[], None]) -> Callable[[], None]:
    """Wrap RUN so that the helper ends quietly whatever happens (nobody reads its output)."""

    def go() -> None:
        try:
            run()
        except Exception:  # noqa: S110 - its files are done again by PostgreSQL's calls
            pass

    return go

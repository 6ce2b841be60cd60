"""WAL archiving and replay, side by side in one run: tiffin wal-push / wal-fetch against
pgBackRest 2.45 (Debian's; local repository, compress-type=zst, process-max=2, sync and
archive-async) and `cp`, on one throwaway PostgreSQL 15 (issue 14's speed table).

Archiving: a backlog of --segments `.ready` segments (pgbench's WAL) is made once with
archiving held back; each round, for each case, the server is stopped, every segment marked
`.ready` again, the destination emptied, and the server started with that case's
archive_command: the time until no `.ready` file is left gives segments per second.
Replay: a copy taken by pg_basebackup (-X fetch) before the backlog recovers through each
case's restore_command from that case's archive to its end: segments per second from the
start of the server to its promotion.
Rounds are interleaved (A B C ... A B C ...); the table shows medians. Peak RSS of tiffin's
processes (calls and helpers) comes from one more, untimed round, watched through /proc.

    .venv/bin/python -m bench.wal --segments 60 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.measure import install_tiffin, installed_python
from tests.servers.postgres import OS_USER, Postgres

STANZA = "bench"
LABEL = "bench"


@dataclass
class Case:
    name: str
    push: str  # archive_command
    fetch: Callable[[Path], str]  # restore_command, given the recovering data directory
    clean: list[Path]  # emptied before each archiving round (kept: archive.info)


def as_postgres(argv: list[str], cwd: Path) -> str:
    proc = subprocess.run(
        argv,
        user=OS_USER,
        group=OS_USER,
        extra_groups=[],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"{argv[0]} failed: {proc.stderr[-2000:]}")
    return proc.stdout


def owned(path: Path) -> Path:
    user = pwd.getpwnam(OS_USER)
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def restore_client(tiffin: str) -> str:
    """Return the words that `tiffin restore --into pgdata` puts before `tiffin wal-fetch` in
    the restore_command it writes: the installed venv's Python, isolated and without site,
    running walask, the fetch helper's client (tiffin/commands/pgrestore.py, client_argv)."""
    python = installed_python(tiffin)
    client = subprocess.run(
        [python, "-c", "import tiffin.commands.walask as w; print(w.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{python} -I -S {client}"


def pgbackrest_conf(
    work: Path, name: str, pgdata: Path, pg: Postgres, asynch: bool, repo_of: str = ""
) -> Path:
    """Write NAME.conf: a local repository (REPO_OF's, else its own), a fresh spool."""
    shutil.rmtree(work / f"{name}-spool", ignore_errors=True)
    repo, spool = owned(work / f"{repo_of or name}-repo"), owned(work / f"{name}-spool")
    conf = work / f"{name}.conf"
    conf.write_text(
        "[global]\n"
        f"repo1-path={repo}\ncompress-type=zst\nprocess-max=2\n"
        f"archive-async={'y' if asynch else 'n'}\nspool-path={spool}\n"
        f"lock-path={owned(work / f'{name}-lock')}\nlog-path={owned(work / f'{name}-log')}\n"
        "log-level-console=warn\nlog-level-file=off\nstart-fast=y\n"
        f"[{STANZA}]\npg1-path={pgdata}\npg1-port={pg.port}\npg1-socket-path={pg.socket_dir}\n"
    )
    conf.chmod(0o644)
    return conf


def connect(pg: Postgres) -> list[str]:
    """The client options that reach PG as postgres over its Unix socket."""
    return ["-h", str(pg.socket_dir), "-p", str(pg.port), "-U", "postgres"]


def make_backlog(pg: Postgres, segments: int) -> list[str]:
    """Write WAL with pgbench until SEGMENTS segments wait as .ready; return their names."""
    status = pg.datadir / "pg_wal" / "archive_status"
    pg.sql("CREATE DATABASE bench")
    while True:
        ready = sorted(p.name for p in status.iterdir() if p.name.endswith(".ready"))
        if len(ready) >= segments:
            pg.sql("CREATE TABLE done AS SELECT 1 AS one", "bench")
            pg.sql("SELECT pg_switch_wal()")
            return sorted(
                p.name[: -len(".ready")] for p in status.iterdir() if p.name.endswith(".ready")
            )
        subprocess.run(
            [
                pg.bin("pgbench"),
                "-i",
                "-q",
                "-s",
                "5",
                *connect(pg),
                "bench",
            ],
            check=True,
            capture_output=True,
        )
        pg.sql("SELECT pg_switch_wal()")


def mark_ready(pg: Postgres, names: list[str]) -> None:
    status = pg.datadir / "pg_wal" / "archive_status"
    for entry in status.iterdir():
        entry.unlink()
    for name in names:
        (status / f"{name}.ready").touch()
        owned_file(status / f"{name}.ready")


def owned_file(path: Path) -> None:
    user = pwd.getpwnam(OS_USER)
    os.chown(path, user.pw_uid, user.pw_gid)


def empty(path: Path, keep: tuple[str, ...] = ("archive.info", "archive.info.copy")) -> None:
    if not path.exists():
        return
    for entry in path.iterdir():
        if entry.name in keep:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def drain(pg: Postgres, case: Case, names: list[str]) -> float:
    """Archive the backlog with CASE's command; return segments per second."""
    pg.stop()
    for folder in case.clean:
        empty(folder)
    shutil.rmtree(pg.datadir / "pg_wal" / "tiffin.pushed", ignore_errors=True)
    mark_ready(pg, [])
    pg.settings["archive_command"] = case.push
    pg.start()
    # The archiver sleeps, nothing being ready: mark the backlog and wake it (SIGUSR1 sets its
    # latch), so that the clock starts with its first file, not with the server's start-up.
    archiver = int(pg.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'archiver'"))
    mark_ready(pg, names)
    started = time.monotonic()
    os.kill(archiver, signal.SIGUSR1)
    status = pg.datadir / "pg_wal" / "archive_status"
    while any(p.name.endswith(".ready") for p in status.iterdir()):
        if time.monotonic() - started > 900:
            raise RuntimeError(f"{case.name}: not drained in 900 s ({pg.log_path})")
        time.sleep(0.01)
    return len(names) / (time.monotonic() - started)


def replay(base: Path, case: Case, segments: int) -> float:
    """Recover a copy of BASE through CASE's restore_command to the end of the archive (the
    table `done`, made last, must be there); return segments per second."""
    copy = Postgres()
    copy.settings["restore_command"] = case.fetch(copy.datadir)
    try:
        shutil.copytree(base, copy.datadir, symlinks=True)
        subprocess.run(["chown", "-R", f"{OS_USER}:{OS_USER}", str(copy.datadir)], check=True)
        copy.datadir.chmod(0o700)
        (copy.datadir / "recovery.signal").touch()
        started = time.monotonic()
        copy.start()
        while copy.sql("SELECT pg_is_in_recovery()") != "f":
            if time.monotonic() - started > 900:
                raise RuntimeError(f"{case.name}: recovery did not end ({copy.log_path})")
            time.sleep(0.01)
        rate = segments / (time.monotonic() - started)
        if copy.sql("SELECT count(*) FROM done", "bench") != "1":
            raise RuntimeError(f"{case.name}: recovery stopped short of the end")
        return rate
    finally:
        copy.close()


class PeakRSS(threading.Thread):
    """Watch every tiffin wal-push and wal-fetch process (the calls and their detached
    helpers, which /usr/bin/time would not see) and keep the highest VmHWM of each kind."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = {"wal-push": 0, "wal-fetch": 0}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
                    kind = next((k for k in self.peak if k.encode() in argv), None)
                    if kind is None:
                        continue
                    status = Path(f"/proc/{entry.name}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak[kind] = max(self.peak[kind], int(line.split()[1]))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segments", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tiffin", help="an installed tiffin to use (default: install this tree)")
    ap.add_argument("--no-replay", action="store_true")
    args = ap.parse_args(argv)

    work = owned(Path(tempfile.mkdtemp(prefix="tiffin-walbench-", dir="/tmp")))
    work.chmod(0o755)
    pg = Postgres(
        settings={
            "wal_level": "replica",
            "archive_mode": "on",
            "archive_command": "/bin/false",
            "wal_keep_size": "8GB",
            "max_wal_size": "8GB",
            "checkpoint_timeout": "1h",
        }
    )
    try:
        tiffin = args.tiffin or install_tiffin(work)
        pg.start()
        base = work / "base"
        as_postgres(
            [
                pg.bin("pg_basebackup"),
                *connect(pg),
                "-D",
                str(base),
                "-X",
                "fetch",
                "-c",
                "fast",
            ],
            work,
        )
        names = make_backlog(pg, args.segments)
        print(f"backlog: {len(names)} segments of pgbench WAL", flush=True)
        sync = pgbackrest_conf(work, "sync", pg.datadir, pg, False)
        asyn = pgbackrest_conf(work, "async", pg.datadir, pg, True)
        for conf in (sync, asyn):
            as_postgres(
                ["pgbackrest", f"--config={conf}", f"--stanza={STANZA}", "stanza-create"], work
            )
        cpdir, tdir = owned(work / "cp"), owned(work / "tiffin-archive")
        adir = owned(work / "tiffin-restore-archive")
        ask = restore_client(tiffin)  # the restore_command `tiffin restore` writes
        pbr = f"pgbackrest --stanza={STANZA} --config="

        def getconf(data: Path, asynch: bool) -> Path:
            mode = "async" if asynch else "sync"
            return pgbackrest_conf(work, f"get-{mode}", data, pg, asynch, mode)

        cases = [
            Case(
                "cp",
                f"test ! -f {cpdir}/%f && cp %p {cpdir}/%f",
                lambda d: f"cp {cpdir}/%f %p",
                [cpdir],
            ),
            Case(
                "pgBackRest zst sync",
                f"{pbr}{sync} archive-push %p",
                lambda d: f"{pbr}{getconf(d, False)} archive-get %f %p",
                [work / "sync-repo/archive" / STANZA / "15-1", work / "sync-spool"],
            ),
            Case(
                "pgBackRest zst async",
                f"{pbr}{asyn} archive-push %p",
                lambda d: f"{pbr}{getconf(d, True)} archive-get %f %p",
                [work / "async-repo/archive" / STANZA / "15-1", work / "async-spool"],
            ),
            Case(
                "tiffin wal-push/fetch",
                f"{tiffin} wal-push local {tdir} --label {LABEL} %p",
                lambda d: f"{tiffin} wal-fetch local {tdir} --label {LABEL} %f %p",
                [tdir],
            ),
            Case(
                "tiffin, restore's restore_command",
                f"{tiffin} wal-push local {adir} --label {LABEL} %p",
                lambda d: f"{ask} {tiffin} wal-fetch local {adir} --label {LABEL} %f %p",
                [adir],
            ),
        ]
        push_rates: dict[str, list[float]] = {c.name: [] for c in cases}
        fetch_rates: dict[str, list[float]] = {c.name: [] for c in cases}
        for r in range(args.repeat):
            for case in cases:
                push_rates[case.name].append(drain(pg, case, names))
                print(
                    f"round {r + 1} archive {case.name}: {push_rates[case.name][-1]:.1f} seg/s",
                    flush=True,
                )
        pg.stop()
        if not args.no_replay:
            for r in range(args.repeat):
                for case in cases:
                    fetch_rates[case.name].append(replay(base, case, len(names)))
                    print(
                        f"round {r + 1} replay {case.name}: {fetch_rates[case.name][-1]:.1f} seg/s",
                        flush=True,
                    )
        # One more, untimed round of tiffin, watched: its peak RSS.
        watch = PeakRSS()
        watch.start()
        drain(pg, cases[-1], names)
        pg.stop()
        if not args.no_replay:
            replay(base, cases[-1], len(names))
        watch.stopped.set()
        print()
        print(f"| {len(names)} segments | archive: drain seg/s | replay seg/s |")
        print("|---|---|---|")
        for case in cases:
            a = statistics.median(push_rates[case.name])
            g = statistics.median(fetch_rates[case.name]) if fetch_rates[case.name] else 0.0
            print(f"| {case.name} | {a:.1f} | {g:.1f} |")
        print(
            f"\ntiffin peak RSS of any one process (calls and helpers): "
            f"wal-push {watch.peak['wal-push'] / 1024:.0f} MB, "
            f"wal-fetch {watch.peak['wal-fetch'] / 1024:.0f} MB"
        )
    finally:
        pg.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

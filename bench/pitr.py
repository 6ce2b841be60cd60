"""Base backups and restores of a PostgreSQL cluster, side by side, in one run (issue 14):

    .venv/bin/python -m bench.pitr --scale 0.8 --repeat 3 --output /tmp/pitr-bench.md

One cluster of about 1.2 GB on disk (bench.datasets: pgbench plus a jsonb table) archives its
WAL to both pgBackRest and tiffin. Backups, interleaved rounds, medians:
  - `pg_basebackup -D - -Ft -X fetch | zstd -T0 -3 > file` (the anchor);
  - tiffin backup pgsql --physical --compress zstd to a local folder;
  - pgbackrest backup --type=full (compress-type=zst, process-max=2, a local repository).
Restores to a writable server (each: written, started, recovered, promoted):
  - `zstd -dc file | tar x` then start (crash recovery from the WAL in the tar);
  - tiffin restore --into pgdata (restore_command: tiffin wal-fetch) then start;
  - pgbackrest restore then start (restore_command: pgbackrest archive-get).
tiffin runs as scripts/install.sh installs it; its own peak RSS is measured in-process
(bench/probe.py, under the installed venv's Python).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from bench import datasets
from bench.measure import PROBE, Result, install_tiffin, installed_python, run, shell
from bench.run import Case, interleaved
from tests.pitr.cluster import switch_and_wait
from tests.servers.env import tiffin_env
from tests.servers.ports import free_port
from tests.servers.postgres import OS_USER, Postgres

STANZA = "bench"


def as_postgres(script: str) -> str:
    return f"runuser -u {OS_USER} -- bash -o pipefail -e -c {shlex.quote(script)}"


class Lab:
    def __init__(self, stack: contextlib.ExitStack, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="tiffin-pitr-bench-", dir=args.tmp))
        self.work.chmod(0o755)
        stack.callback(shutil.rmtree, self.work, ignore_errors=True)
        user = pwd.getpwnam(OS_USER)
        for sub in ("repo", "archive", "keep", "restored", "spool"):
            (self.work / sub).mkdir()
            os.chown(self.work / sub, user.pw_uid, user.pw_gid)
        self.conf = self.work / "pgbackrest.conf"
        # tiffin as scripts/install.sh installs it (every OS user can run it: the archiver);
        # the timed runs go through bench/probe.py under that venv's Python.
        self.command = install_tiffin(self.work / "install")
        self.probe = [installed_python(self.command), "-I", str(PROBE)]
        self.pg = Postgres(
            settings={
                "wal_level": "replica",
                "archive_mode": "on",
                "archive_command": (
                    f"pgbackrest --config={self.conf} --stanza={STANZA} archive-push %p && "
                    f"{self.command} wal-push local {self.work / 'archive'} --label {STANZA} %p"
                ),
                "max_wal_size": "4GB",
            }
        )
        stack.callback(self.pg.close)
        self.conf.write_text(
            f"[global]\nrepo1-path={self.work / 'repo'}\nrepo1-retention-full=100\n"
            f"compress-type=zst\ncompress-level=3\nprocess-max=2\nstart-fast=y\narchive-timeout=600\n"
            f"spool-path={self.work / 'spool'}\nlog-level-console=warn\nlog-level-file=off\n\n"
            f"[{STANZA}]\npg1-path={self.pg.datadir}\npg1-port={self.pg.port}\n"
            f"pg1-socket-path={self.pg.socket_dir}\n"
        )
        self.pg.start()
        self.summary = datasets.build_postgres(self.pg, args.scale)
        self.size = int(self.pg.sql("SELECT sum(pg_database_size(oid)) FROM pg_database"))
        self.backrest("stanza-create")
        # The dataset's WAL is archived first (both archives), so no case waits on that backlog.
        print("waiting for the archiver to catch up", file=sys.stderr)
        switch_and_wait(self.pg, timeout=3600)
        self.env = tiffin_env(self.work / "home", TIFFIN_DB_PASSWORD=self.pg.password,
                              PYTHONPATH=str(Path.cwd()), PYTHONDONTWRITEBYTECODE="1")  # fmt: skip
        self.port = free_port()

    def backrest(self, command: str) -> None:
        run(shell(as_postgres(f"pgbackrest --config={self.conf} --stanza={STANZA} {command}")),
            os.environ)  # fmt: skip

    def conn(self) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(self.pg.port), "--user", "postgres"]

    def backup_cases(self) -> list[Case]:
        f = str(self.work / "anchor.tar.zst")
        conn = f"-h 127.0.0.1 -p {self.pg.port} -U postgres -w"
        # -c fast, as tiffin and pgBackRest (start-fast=y) have it: a spread checkpoint waits
        # up to checkpoint_completion_target x checkpoint_timeout (4.5 minutes) whatever the size.
        basebackup = f"{self.pg.bin('pg_basebackup')} -D - -Ft -X fetch -c fast {conn}"
        anchor = f"{basebackup} | zstd -q -T0 -3 > {f}"
        env = dict(self.env, PGPASSWORD=self.pg.password)
        out = self.work / "out"
        tiffin = [*self.probe, "backup", "pgsql", "local", str(out), *self.conn()]
        tiffin += ["--physical", "--compress", "zstd", "--label", "bench", "--quiet"]
        backrest = as_postgres(
            f"pgbackrest --config={self.conf} --stanza={STANZA} --type=full backup"
        )
        return [
            Case("pg_basebackup -X fetch -c fast | zstd -T0 -3 > file", shell(anchor), env, False,
                 f),
            Case("tiffin --physical --compress zstd → local", tiffin, self.env, True,
                 local_target=True),
            Case("pgbackrest backup (zst, process-max=2)", shell(backrest), env),
        ]  # fmt: skip

    def clean(self) -> None:
        shutil.rmtree(self.work / "out", ignore_errors=True)

    def start(self, data: Path) -> str:
        """A script that starts the server on DATA and waits until it takes writes."""
        opts = (
            f"-p {self.port} -c listen_addresses='' -c unix_socket_directories={data} "
            "-c archive_mode=off -c max_locks_per_transaction=512"  # as the origin's (fixture)
        )
        pg_ctl = self.pg.bin("pg_ctl")
        psql = f"{self.pg.bin('psql')} -X -q -A -t -h {data} -p {self.port} -U postgres"
        wait = (
            f'until [ "$({psql} -c "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ]; '
            "do sleep 0.05; done"
        )
        start = f"{pg_ctl} -D {data} -l {data}.log -o {shlex.quote(opts)} -w -t 600 start"
        failed = f"{{ tail -5 {data}.log >&2; exit 1; }}"
        return as_postgres(f"{{ {start} >/dev/null || {failed}; }} && {wait}")

    def stop(self, data: Path) -> None:
        if (data / "postmaster.pid").exists():
            run(shell(as_postgres(f"{self.pg.bin('pg_ctl')} -D {data} -m fast -w stop")),
                os.environ)  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            Path(f"{data}.log").unlink()

    def restore_cases(self) -> list[Case]:
        keep = self.work / "keep"
        tar = keep / "anchor.tar.zst"
        conn = f"-h 127.0.0.1 -p {self.pg.port} -U postgres -w"
        env = dict(self.env, PGPASSWORD=self.pg.password)
        run(shell(f"{self.pg.bin('pg_basebackup')} -D - -Ft -X fetch -c fast {conn} | "
                  f"zstd -q -T0 -3 > {tar}"), env)  # fmt: skip
        # tiffin's base backup goes beside its WAL archive (ARCHIVE/bench.wal/), as a user's
        # would: the restore_command it writes reads that same target. Each restore case takes
        # its own base backup just before it, untimed, then closes that WAL segment and waits
        # until both archives hold it: both recoveries then replay the same WAL (their own
        # backup's, then one switched segment). Backups taken once, one after the other, gave
        # the first one taken (tiffin's) two more segments to replay than the second. Every
        # case starts after a sync(), so that no restore waits on the write-back of what the
        # step before it left in the page cache (a backup, a removed data directory).
        # Archiving a switched segment has been seen to take over 60 s here (the
        # archive_command neither failing nor done): waited for, untimed.
        arch = self.work / "archive"

        def tiffin_base() -> None:
            run([self.command, "backup", "pgsql", "local", str(arch), *self.conn(),
                 "--physical", "--compress", "zstd", "--label", "bench", "--quiet"],
                self.env)  # fmt: skip
            switch_and_wait(self.pg, timeout=600)
            os.sync()

        def backrest_base() -> None:
            self.backrest("--type=full backup")
            switch_and_wait(self.pg, timeout=600)
            os.sync()

        data = self.work / "restored" / "data"
        untar = as_postgres(f"mkdir -m 700 {data} && zstd -dc {tar} | tar xf - -C {data}")
        tiffin = shlex.join([*self.probe, "restore", "local", str(arch), "latest",
                             "--into", "pgdata", "--dir", str(data), "--quiet"])  # fmt: skip
        backrest = as_postgres(
            f"mkdir -m 700 {data} && pgbackrest --config={self.conf} --stanza={STANZA} "
            f"--pg1-path={data} restore"
        )
        start = self.start(data)
        return [
            Case("zstd -dc | tar x, then start", shell(f"{untar} && {start}"), env,
                 before=os.sync),
            Case("tiffin restore --into pgdata, then start", shell(f"{tiffin} && {start}"),
                 self.env, True, before=tiffin_base),
            Case("pgbackrest restore, then start", shell(f"{backrest} && {start}"), env,
                 before=backrest_base),
        ]  # fmt: skip


def table(title: str, results: list[Result], anchor: str) -> list[str]:
    base = next(r for r in results if r.label == anchor).median("wall")
    lines = [f"### {title}", "", "| case | wall s | x anchor | CPU s | peak RSS MiB | stored MB |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        wall = r.median("wall")
        rss = r.median("rss_kib") / 1024
        label = r.label.replace("|", "\\|")
        lines.append(
            f"| {label} | {wall:.2f} | {wall / base:.2f} | {r.median('cpu'):.2f} | "
            f"{rss:.0f} | {r.median('stored') / 1e6:.0f} |"
        )
    return [*lines, ""]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scale", type=float, default=0.8, help="bench.datasets scale (0.8: ~1.2 GB)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--output")
    p.add_argument("--tmp", default="/tmp")
    args = p.parse_args(argv)
    lines = [f"`python -m bench.pitr {' '.join(argv)}`", ""]
    lines.append("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with contextlib.ExitStack() as stack:
        lab = Lab(stack, args)
        title = f"cluster: {lab.summary}, {lab.size / 1e9:.2f} GB on disk"
        print(title, file=sys.stderr)
        lines += ["", title, ""]
        backups = interleaved(lab.backup_cases(), args.repeat, lab.clean)
        lines += table("Base backup", backups, backups[0].label)
        data = lab.work / "restored" / "data"
        restores = interleaved(lab.restore_cases(), args.repeat, lambda: lab.stop(data))
        lines += table("Restore and recovery to a writable server", restores, restores[2].label)
    lines.append("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    text = "\n".join(lines)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""tiffin against the seed's shell pipeline, side by side, on throwaway servers.

    .venv/bin/python -m bench.run --scale 0.1 --repeat 3           # quick: ~100 MB per source
    .venv/bin/python -m bench.run --scale 1 --repeat 3 --output docs/bench-latest.md

For each source (PostgreSQL, MariaDB, a directory, a directory of 15,000 small files) it
builds a deterministic dataset of about SCALE GB, then runs every case once per round, rounds
interleaved (A B C A B C ...): the bare dump to /dev/null (the floor), the seed's pipeline
(dump | gzip > file, then scp or a boto3 upload), dump | pigz -p2, dump | zstd -T0 -3, and
tiffin with gzip and zstd to local, sftp and s3 (moto). Then the upload legs (one random
file: scp vs tiffin sftp, boto3 upload_file vs tiffin s3) and restores (gunzip | psql /
mysql / tar x vs tiffin restore). Medians.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bench import datasets, report
from bench.measure import PROBE, Result, Sample, install_tiffin, installed_python, run, shell
from tests.servers.base import Server
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB
from tests.servers.postgres import Postgres
from tests.servers.proc import ServerError
from tests.servers.s3 import S3Server
from tests.servers.sshd import SSHServer

S = TypeVar("S", bound=Server)
PY = sys.executable
BUCKET = "bench"
UPLOAD = "import sys, boto3; boto3.client('s3').upload_file(sys.argv[1], sys.argv[2], sys.argv[3])"


@dataclass
class Case:
    label: str
    argv: list[str]
    env: dict[str, str]
    probe: bool = False
    output_file: str | None = None
    output_is_temp: bool = False
    local_target: bool = False
    before: Callable[[], None] | None = None
    after: Callable[[], None] | None = None


@dataclass
class Source:
    name: str
    title: str
    dump: str  # a shell command writing the plain dump to stdout
    dump_env: dict[str, str]
    tiffin_args: list[str]  # WHAT and its options
    load: str  # a shell command loading a plain dump from stdin
    into: list[str]  # tiffin restore's --into and connection options
    reset: Callable[[], None]
    summary: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)


class Lab:
    """The servers, the scratch folder and the cases that run against them."""

    def __init__(self, stack: contextlib.ExitStack, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="tiffin-bench-", dir=args.tmp))
        stack.callback(shutil.rmtree, self.work, ignore_errors=True)
        self.sshd = stack.enter_context(SSHServer())
        self.s3 = stack.enter_context(S3Server())
        self.s3.make_bucket(BUCKET)
        self._stack = stack
        self.home = self.work / "home"
        (self.home / ".ssh").mkdir(parents=True)
        self.sshd.write_known_hosts(self.home / ".ssh" / "known_hosts")
        entry = pwd.getpwnam(self.sshd.user)
        for sub in ("bench-seed", "bench-tiffin"):
            (self.sshd.home / sub).mkdir(exist_ok=True)
            os.chown(self.sshd.home / sub, entry.pw_uid, entry.pw_gid)
        self.env = tiffin_env(
            self.home, **self.s3.env(), PYTHONPATH=str(Path.cwd()), PYTHONDONTWRITEBYTECODE="1"
        )
        # tiffin as scripts/install.sh installs it (bytecode compiled, no editable install's
        # import hook), run by bench/probe.py under that venv's Python.
        self.python = installed_python(install_tiffin(self.work / "install"))

    def tiffin(self, *args: str, python: str | None = None) -> list[str]:
        return [python or self.python, "-I", str(PROBE), *args]

    # -- targets ------------------------------------------------------------------------
    def target_args(self, target: str) -> list[str]:
        if target == "local":
            return ["local", str(self.work / "out")]
        if target == "sftp":
            where = f"{self.sshd.user}@127.0.0.1:{self.sshd.port}"
            return ["sftp", where, "bench-tiffin", "--ssh-key", str(self.sshd.client_key)]
        return ["s3", BUCKET, "runs"]

    def clean_targets(self) -> None:
        shutil.rmtree(self.work / "out", ignore_errors=True)
        for sub in ("bench-seed", "bench-tiffin"):
            for p in (self.sshd.home / sub).iterdir():
                p.unlink()
        client = self.s3.client()
        for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])

    def scp(self, path: str) -> list[str]:
        known = self.home / ".ssh" / "known_hosts"
        return [
            "scp", "-q", "-F", "/dev/null", "-i", str(self.sshd.client_key),
            "-P", str(self.sshd.port), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={known}", path, f"{self.sshd.user}@127.0.0.1:bench-seed/",
        ]  # fmt: skip

    # -- sources ------------------------------------------------------------------------
    def postgres(self) -> Source:
        pg = self._stack.enter_context(_started(Postgres))
        conn = ["-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres"]
        env = dict(self.env, PGPASSWORD=pg.password)
        tiffin_conn = ["--host", "127.0.0.1", "--port", str(pg.port), "--user", "postgres"]
        return Source(
            "pgsql",
            "PostgreSQL (pg_dumpall: pgbench + jsonb)",
            shlex.join([pg.bin("pg_dumpall"), "-w", "--quote-all-identifiers", *conn]),
            env,
            ["pgsql", *tiffin_conn],
            shlex.join([pg.bin("psql"), "-X", "-w", "-q", *conn, "-d", "postgres"]),
            ["--into", "pgsql", *tiffin_conn],
            lambda: _ignore(pg.sql("DROP DATABASE IF EXISTS bench;\n")),
            datasets.build_postgres(pg, self.args.scale),
            {"TIFFIN_DB_PASSWORD": pg.password},
        )

    def mariadb(self) -> Source:
        db = self._stack.enter_context(_started(MariaDB))
        conn = ["--host", "127.0.0.1", "--protocol=TCP", "--port", str(db.port), "--user", db.user]
        opts = ["--routines", "--triggers", "--events", "--hex-blob", "--quick"]
        opts += ["--default-character-set=utf8mb4", "--single-transaction", "--all-databases"]
        tiffin_conn = ["--host", "127.0.0.1", "--port", str(db.port), "--user", db.user]
        return Source(
            "mysql",
            "MariaDB (mariadb-dump --single-transaction)",
            shlex.join(["mariadb-dump", "--no-defaults", *conn, *opts]),
            dict(self.env, MYSQL_PWD=db.password),
            ["mysql", *tiffin_conn, "--consistency", "single-transaction"],
            shlex.join(["mariadb", "--no-defaults", *conn, "--binary-mode"]),
            ["--into", "mysql", *tiffin_conn],
            lambda: _ignore(db.sql("DROP DATABASE IF EXISTS bench")),
            datasets.build_mariadb(db, self.args.scale),
            {"TIFFIN_DB_PASSWORD": db.password},
        )

    def directory(self, small: bool = False) -> Source:
        root = self.work / ("small" if small else "tree")
        build = datasets.build_small_files if small else datasets.build_directory
        summary = build(root, self.args.scale)
        dest = self.work / "restored"
        return Source(
            "small" if small else "data",
            "directory of many small files" if small else "directory (tar of mixed files)",
            f"tar cf - -C {shlex.quote(str(root))} data | cat",  # tar skips reads into /dev/null
            dict(self.env),
            ["data", "--dir", str(root / "data")],
            f"tar xf - -C {shlex.quote(str(dest))}",
            ["--into", "dir", "--dir", str(dest)],
            lambda: _fresh(dest),
            summary,
        )

    # -- cases --------------------------------------------------------------------------
    def backup_cases(self, src: Source) -> list[Case]:
        f = str(self.work / "seed.out")
        dump = src.dump
        env = src.dump_env
        upload_s3 = shlex.join([PY, "-c", UPLOAD, f, BUCKET, "seed/dump.gz"])
        cases = [
            Case("floor: dump > /dev/null", shell(f"{dump} > /dev/null"), env),
            Case("seed: dump | gzip -6 > file", shell(f"{dump} | gzip -6 > {f}"), env, False, f),
        ]
        targets = self.args.targets
        if "sftp" in targets:
            script = f"{dump} | gzip -6 > {f} && {shlex.join(self.scp(f))}"
            cases.append(Case("seed: gzip, then scp", shell(script), env, False, f, True))
        if "s3" in targets:
            script = f"{dump} | gzip -6 > {f} && {upload_s3}"
            cases.append(Case("seed: gzip, then boto3 upload", shell(script), env, False, f, True))
        pigz, zstd = shell(f"{dump} | pigz -p2 -6 > {f}"), shell(f"{dump} | zstd -q -T0 -3 > {f}")
        cases.append(Case("dump | pigz -p2 > file", pigz, env, False, f))
        cases.append(Case("dump | zstd -T0 -3 > file", zstd, env, False, f))
        tenv = dict(self.env, **src.extra_env)
        for codec in ("gzip", "zstd"):
            for target in targets:
                argv = self.tiffin("backup", *src.tiffin_args, *self.target_args(target))
                argv += ["--compress", codec, "--label", f"bench-{codec}", "--quiet"]
                label = f"tiffin {codec} → {target}"
                cases.append(Case(label, argv, tenv, True, local_target=target == "local"))
        if src.tiffin_args[0] in ("pgsql", "mysql") and "local" in targets:
            # What the exact row counts (counted beside the dump, by the server) cost.
            argv = self.tiffin("backup", *src.tiffin_args, *self.target_args("local"))
            argv += ["--compress", "zstd", "--counts", "estimate", "--label", "bench-est"]
            label = f"{report.ESTIMATE} → local"
            cases.append(Case(label, [*argv, "--quiet"], tenv, True, local_target=True))
        return cases

    def leg_cases(self, size: int) -> list[Case]:
        folder = self.work / "leg" / "data"
        folder.mkdir(parents=True, exist_ok=True)
        blob = folder / "blob.bin"
        if not blob.exists() or blob.stat().st_size != size:
            with blob.open("wb") as out:
                datasets.random_bytes(out, size, random.Random(1))
        none = ["--dir", str(folder), "--compress", "none", "--label", "leg", "--quiet"]
        upload = [PY, "-c", UPLOAD, str(blob), BUCKET, "seed/blob.bin"]
        return [
            Case("scp", self.scp(str(blob)), self.env),
            Case(
                "tiffin → sftp, --compress none",
                self.tiffin("backup", "data", *self.target_args("sftp"), *none),
                self.env,
                True,
            ),
            Case("boto3 upload_file", upload, self.env),
            Case(
                "tiffin → s3, --compress none",
                self.tiffin("backup", "data", *self.target_args("s3"), *none),
                self.env,
                True,
            ),
        ]

    def restore_cases(self, src: Source) -> list[Case]:
        keep = self.work / "keep"
        shutil.rmtree(keep, ignore_errors=True)
        seed_file = keep / "seed.gz"
        keep.mkdir()
        run(shell(f"{src.dump} | gzip -6 > {seed_file}"), src.dump_env)
        tenv = dict(self.env, **src.extra_env)
        run(
            self.tiffin("backup", *src.tiffin_args, "local", str(keep), "--label", "r"),
            tenv,
            probe=True,
        )
        [name] = [p.name for p in keep.glob("r_*") if not p.name.endswith(".json")]
        seed = shell(f"gunzip -c {seed_file} | {src.load}")
        words = ["restore", "local", str(keep), name, *src.into, "--quiet"]
        mine = self.tiffin(*words)
        cases = [
            Case("seed: gunzip -c file | load", seed, src.dump_env, before=src.reset),
            Case("tiffin restore (verify, decompress, load)", mine, tenv, True, before=src.reset),
        ]
        if self.args.baseline:  # another checkout, installed as this one is
            other = install_tiffin(self.work / "baseline", Path(self.args.baseline).resolve())
            argv = self.tiffin(*words, python=installed_python(other))
            cases.append(Case("baseline: tiffin restore", argv, tenv, True, before=src.reset))
        return cases


def _started(factory: Callable[[], S]) -> S:
    """Start a server, trying again twice: a MariaDB install sometimes trips over the temp
    tables of another one installing at the same time."""
    for attempt in range(3):
        server = factory()
        try:
            return server.start()
        except ServerError:
            server.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _ignore(_: object) -> None:
    pass


def _fresh(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()


def interleaved(cases: list[Case], repeat: int, after: Callable[[], None]) -> list[Result]:
    """Run every case once per round, REPEAT rounds, in the given order then the reverse
    (a drift of the machine, a disk's slowing down, weighs on every case alike); return
    their results in case order."""
    results = [Result(c.label, "") for c in cases]
    pairs = list(zip(cases, results, strict=True))
    for round_ in range(repeat):
        for case, result in pairs if round_ % 2 == 0 else pairs[::-1]:
            if case.before:
                case.before()
            sample: Sample = run(
                case.argv,
                case.env,
                probe=case.probe,
                output_file=case.output_file,
                output_is_temp=case.output_is_temp,
                stored=(lambda _: 0) if case.label.startswith("floor") else None,
                local_target=case.local_target,
            )
            result.samples.append(sample)
            after()
            print(f"  round {round_ + 1}: {case.label}: {sample.wall:.2f} s", file=sys.stderr)
    return results


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0, help="GB of plain dump per source")
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median taken)")
    p.add_argument("--sources", default="pgsql,mysql,data,small")
    p.add_argument("--targets", default="local,sftp,s3")
    p.add_argument("--no-legs", action="store_true", help="skip the upload legs")
    p.add_argument("--no-restore", action="store_true", help="skip the restore timings")
    p.add_argument("--no-backup", action="store_true", help="skip the backup timings")
    p.add_argument(
        "--baseline",
        metavar="DIR",
        help="also time the restores of another checkout's tiffin (a worktree of main)",
    )
    p.add_argument("--leg-size", type=int, default=0, help="bytes (default: 1 GiB x scale)")
    p.add_argument("--output", help="also write the tables (markdown) to this file")
    p.add_argument("--tmp", default="/tmp", help="scratch folder")
    args = p.parse_args(argv)
    args.sources = [s for s in args.sources.split(",") if s]  # "" : the upload legs alone
    args.targets = args.targets.split(",")
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    lines: list[str] = [f"`python -m bench.run {' '.join(argv)}`", ""]
    lines.append("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    lines.append("")
    with contextlib.ExitStack() as stack:
        lab = Lab(stack, args)
        for name in args.sources:
            src = {
                "pgsql": lab.postgres,
                "mysql": lab.mariadb,
                "data": lab.directory,
                "small": lambda: lab.directory(small=True),
            }[name]()
            plain = int(subprocess.run(shell(f"{src.dump} | wc -c"), env=src.dump_env,
                                       capture_output=True, check=True).stdout)  # fmt: skip
            title = f"{src.title}: {src.summary}, {plain / 1e6:.0f} MB plain"
            print(title, file=sys.stderr)
            if not args.no_backup:
                results = interleaved(lab.backup_cases(src), args.repeat, lab.clean_targets)
                lines += report.backup_table(title, results)
                lines += [*report.goal_lines(report.goals(results)), ""]
            else:
                lines += [f"#### {title}", ""]
            if not args.no_restore:
                restores = interleaved(lab.restore_cases(src), args.repeat, lambda: None)
                lines += [*report.restore_table(src.title, restores), ""]
            _emit(lines, args.output)
        if not args.no_legs:
            size = args.leg_size or int((1 << 30) * min(1.0, args.scale)) // (1 << 20) << 20
            cases = [c for c in lab.leg_cases(size) if _leg_target(c.label) in args.targets]
            legs = interleaved(cases, args.repeat, lab.clean_targets)
            lines += report.leg_table(legs, size)
        lines.append("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        _emit(lines, args.output)
    print("\n".join(lines))
    return 0


def _leg_target(label: str) -> str:
    """Return the target a leg's case belongs to, so that --targets picks the legs too."""
    return "sftp" if label == "scp" or "sftp" in label else "s3"


def _emit(lines: list[str], path: str | None) -> None:
    if path:
        Path(path).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

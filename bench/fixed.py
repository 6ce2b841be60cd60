"""The fixed cost of a run: tiffin's wall time over the bare dump of a small database.

    .venv/bin/python -m bench.fixed --repeat 15            # a ~10 MB pgbench database

On a small database what tiffin adds to the dump does not grow with the data: Python's
start-up and tiffin's imports, the sessions that read the server's version, databases and
tables before the dump (PostgreSQL `prepare()`), the row counts drill checks against, the
manifest and the fsync. The cases run interleaved, rounds of: the bare dump into a file, and
tiffin with `--compress none` to a local folder (with each `--counts` setting). The goal of
issue 17: the median of tiffin minus the median of the bare dump under 0.1 s (`exact`, the
default).

Each checkout timed is installed as a user installs it (scripts/install.sh: a venv of its
own, bytecode compiled, and the command that script writes), not run from the work tree: a
work tree has no bytecode (the bench and the tests run with PYTHONDONTWRITEBYTECODE), and the
editable install of `.venv` costs every start its import hook (0.01 s here), neither of which
an installed tiffin pays.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.measure import Result, install_tiffin, run, shell
from bench.run import PY
from tests.servers.env import tiffin_env
from tests.servers.postgres import Postgres

GOAL = 0.1  # seconds over the bare dump


def build(pg: Postgres, scale: int) -> int:
    """Create database `bench` (pgbench -s SCALE) on PG; return its dump's size in bytes."""
    pg.sql("DROP DATABASE IF EXISTS bench;\nCREATE DATABASE bench;\n")
    pgbench = [pg.bin("pgbench"), "-i", "-q", "-s", str(scale), "-h", str(pg.socket_dir)]
    pgbench += ["-p", str(pg.port), "-U", "postgres", "bench"]
    subprocess.run(pgbench, check=True, capture_output=True)
    pg.sql("VACUUM ANALYZE;\n", "bench")
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeat", type=int, default=15, help="interleaved rounds (median taken)")
    p.add_argument("--scale", type=int, default=1, help="pgbench scale (1: a ~10 MB dump)")
    p.add_argument("--tmp", default="/tmp", help="scratch folder")
    p.add_argument(
        "--baseline",
        metavar="DIR",
        help="also time the tiffin of another checkout (a worktree of main), interleaved",
    )
    args = p.parse_args(argv)
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="tiffin-fixed-", dir=args.tmp))
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        pg = stack.enter_context(Postgres()).start()
        build(pg, args.scale)
        home = work / "home"
        home.mkdir()
        env = tiffin_env(home, PGPASSWORD=pg.password, TIFFIN_DB_PASSWORD=pg.password)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        conn = ["-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres"]
        dump = shlex.join([pg.bin("pg_dumpall"), "-w", "--quote-all-identifiers", *conn])
        size = int(subprocess.run(shell(f"{dump} | wc -c"), env=env, capture_output=True,
                                  check=True).stdout)  # fmt: skip
        out = work / "out"
        command = install_tiffin(work / "here")
        words = ["backup", "pgsql", "--host", "127.0.0.1", "--port", str(pg.port)]
        words += ["--user", "postgres", "local", str(out), "--compress", "none", "--quiet"]
        tiffin = [command, *words]
        cases: list[tuple[str, list[str]]] = [
            ("bare dump > file", shell(f"{dump} > {work / 'bare.sql'}")),
            ("tiffin --compress none → local", tiffin),
            ("tiffin … --counts estimate", [*tiffin, "--counts", "estimate"]),
            ("tiffin … --counts off", [*tiffin, "--counts", "off"]),
            ("python -c pass", [PY, "-c", "pass"]),
        ]
        if args.baseline:
            other = install_tiffin(work / "baseline", Path(args.baseline).resolve())
            cases.append((f"baseline: {cases[1][0]}", [other, *words]))
        results = [Result(label, "") for label, _ in cases]
        for round_ in range(args.repeat):
            for (label, cmd), result in zip(cases, results, strict=True):
                sample = run(cmd, env, stored=lambda _: 0)
                result.samples.append(sample)
                shutil.rmtree(out, ignore_errors=True)
                print(f"  round {round_ + 1}: {label}: {sample.wall:.3f} s", file=sys.stderr)
    print(table(results, size))
    return 0


def table(results: list[Result], size: int) -> str:
    """Given the results (the bare dump first), return a markdown table and the goal line."""
    bare = results[0].median("wall")
    lines = [
        f"pg_dumpall of pgbench -s 1: {size / 1e6:.1f} MB plain",
        "",
        "| case | median wall s | min s | over the bare dump s | CPU s | CPU over it s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    bare_cpu = results[0].median("cpu")
    for r in results:
        walls = [s.wall for s in r.samples]
        over = statistics.median(walls) - bare
        cpu = r.median("cpu")  # of the command and its children (dump tool, psql)
        lines.append(f"| {r.label} | {statistics.median(walls):.3f} | {min(walls):.3f} | "
                     f"{over:+.3f} | {cpu:.3f} | {cpu - bare_cpu:+.3f} |")  # fmt: skip
    over = results[1].median("wall") - bare
    met = "yes" if over < GOAL else "NO"
    lines += ["", f"| tiffin over the bare dump, s (< {GOAL}) | {over:.3f} | {met} |"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

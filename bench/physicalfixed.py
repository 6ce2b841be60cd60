"""The fixed cost of a physical MariaDB backup: tiffin over the manual pipeline on a small server.

    .venv/bin/python -m bench.physicalfixed --repeat 21 [--before OTHER_TIFFIN]

On a server of a few MB, what tiffin adds to `mariabackup --stream | zstd -T0 -3` does not
grow with the data: Python's start-up and imports, the session before mariabackup starts,
the catalog and row counts beside it, the manifest and the fsyncs. Rounds of the cases,
interleaved (each round starts one case later); for each, the median wall time and the
median CPU time (user + system, the command and all its children), since a machine loaded
by other work inflates wall time far more than CPU time. --before adds another tiffin
command (a checkout of main, say) as a third case.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.helpers import tiffin_exe
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB

FILL = (
    "CREATE DATABASE bench; USE bench;"
    "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB;"
    "INSERT INTO t SELECT seq, REPEAT('x', 90) FROM seq_1_to_20000;"
    + "".join(f"CREATE TABLE s{i} (id INT PRIMARY KEY) ENGINE=InnoDB;" for i in range(20))
)


def measured(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ARGV; return (wall seconds, CPU seconds of it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)[:200]} exited {proc.returncode}: {proc.stderr[-800:]}")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--before", metavar="EXE", help="another tiffin command, as a third case")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="tiffin-bench-physfixed-", dir="/var/tmp"))
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        db = MariaDB(server_args=("--log-bin=bin", "--server-id=1")).start()
        stack.callback(db.close)
        db.sql(FILL)
        env = tiffin_env(work / "home", **db.client_env(), HOSTNAME="bench")
        conn = f"--host=127.0.0.1 --port={db.port} --user=tiffin"
        secret = work / "my.cnf"
        secret.write_text(f"[client]\npassword={db.password}\n")
        secret.chmod(0o600)

        def manual() -> tuple[float, float]:
            td = work / "td"
            td.mkdir(exist_ok=True)
            script = (
                f"mariabackup --defaults-extra-file={secret} --backup --stream=xbstream "
                f"--target-dir={td} {conn} 2>/dev/null | zstd -q -T0 -3 > {work}/manual.xb.zst"
            )
            got = measured(["bash", "-o", "pipefail", "-c", script], env)
            shutil.rmtree(td)
            return got

        def tiffin(exe: str) -> Callable[[], tuple[float, float]]:
            def one() -> tuple[float, float]:
                shutil.rmtree(work / "b", ignore_errors=True)
                argv = [exe, "backup", "mysql", "local", str(work / "b"), "--physical",
                        "--compress", "zstd", "--quiet", *shlex.split(conn)]  # fmt: skip
                return measured(argv, env)

            return one

        cases = {
            "manual: mariabackup --stream | zstd -T0 -3": manual,
            "tiffin": tiffin(tiffin_exe()),
        }
        if args.before:
            cases["tiffin (before)"] = tiffin(args.before)
        names = list(cases)
        got: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        for i in range(args.repeat):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                got[name].append(cases[name]())
    print(f"medians of {args.repeat} interleaved rounds on a small MariaDB server\n")
    print("| case | wall (s) | CPU (s) |\n|---|---:|---:|")
    for name, samples in got.items():
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        print(f"| {name.replace('|', chr(92) + '|')} | {wall:.3f} | {cpu:.3f} |")


if __name__ == "__main__":
    main()

"""Physical MariaDB backups: tiffin against the manual mariabackup pipeline, side by side.

    .venv/bin/python -m bench.physical --scale 1 --repeat 3 --output /tmp/physical.md
    .venv/bin/python -m bench.physical --scale 1 --repeat 5 --no-logical --before OTHER_TIFFIN

On a throwaway MariaDB holding bench.datasets' MariaDB data (about SCALE GB of dump text),
each round runs, interleaved (A B A B ...), medians of --repeat rounds:
  backup   manual: mariabackup --backup --stream=xbstream | zstd -T0 -3 > file
           tiffin: tiffin backup mysql local DIR --physical --compress zstd
  restore  manual: zstd -dc file | mbstream -x -C W; mariabackup --prepare --target-dir=W;
                   mariabackup --copy-back --target-dir=W --datadir=D; chown -R mysql D
           tiffin: tiffin restore local DIR NAME --into mysqldata --dir D
and once, for information, the logical tools on the same data: mariadb-dump | gzip -6 and
gunzip | mariadb, mydumper and myloader --threads 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import datasets
from bench.measure import shell
from tests.e2e.helpers import tiffin_exe
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB

PW = "Maria-S3cret-pw"


def timed(argv: list[str], env: dict[str, str]) -> float:
    """Run ARGV; return its wall seconds. Raise RuntimeError quoting stderr if it fails."""
    t0 = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)[:200]} exited {proc.returncode}: {proc.stderr[-1500:]}"
        )
    return seconds


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--output")
    ap.add_argument("--no-logical", action="store_true", help="skip the dump/mydumper cases")
    ap.add_argument(
        "--before",
        metavar="EXE",
        help="another tiffin command (a checkout of main, say) backed up in the same rounds",
    )
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="tiffin-bench-physical-", dir="/var/tmp"))
        work.chmod(0o755)
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        db = MariaDB(server_args=("--log-bin=bin", "--server-id=1")).start()
        stack.callback(db.close)
        summary = datasets.build_mariadb(db, args.scale)
        db.sql("FLUSH TABLES; SET GLOBAL innodb_max_dirty_pages_pct=0")
        env = tiffin_env(work / "home", **db.client_env(), HOSTNAME="bench")
        conn = f"--host=127.0.0.1 --port={db.port} --user=tiffin"
        secret = work / "my.cnf"
        secret.write_text(f"[client]\npassword={PW}\n")
        secret.chmod(0o600)
        backups = work / "backups"
        manual_file = work / "manual.xb.zst"
        times: dict[str, list[float]] = {}
        sizes: dict[str, int] = {}
        td = work / "td"

        def note(label: str, seconds: float) -> None:
            times.setdefault(label, []).append(seconds)
            print(f"{label}: {seconds:.2f} s", flush=True)

        def manual_backup() -> None:
            td.mkdir(exist_ok=True)
            script = (
                f"mariabackup --defaults-extra-file={secret} --backup --stream=xbstream "
                f"--target-dir={td} {conn} | zstd -q -T0 -3 > {manual_file}"
            )
            note("backup: mariabackup --stream | zstd -T0 -3", timed(shell(script), env))
            sizes["backup: mariabackup --stream | zstd -T0 -3"] = manual_file.stat().st_size
            shutil.rmtree(td)

        def tiffin_backup(exe: str = tiffin_exe(), label: str = "") -> None:
            shutil.rmtree(backups, ignore_errors=True)
            argv = [exe, "backup", "mysql", "local", str(backups), "--physical",
                    "--compress", "zstd", *shlex.split(conn)]  # fmt: skip
            note(f"backup: tiffin{label} --physical --compress zstd", timed(argv, env))
            sizes[f"backup: tiffin{label} --physical --compress zstd"] = du(backups)

        def manual_restore() -> None:
            w, d = work / "w", work / "d"
            script = (
                f"mkdir {w} && zstd -dc {manual_file} | mbstream -x -C {w} && "
                f"mariabackup --prepare --target-dir={w} && "
                f"mariabackup --copy-back --target-dir={w} --datadir={d} && chown -R mysql: {d}"
            )
            note("restore: unpack + prepare + copy-back", timed(shell(script), env))
            shutil.rmtree(w)
            shutil.rmtree(d)

        def tiffin_restore() -> None:
            d = work / "d"
            argv = [tiffin_exe(), "restore", "local", str(backups), "latest", "--into",
                    "mysqldata", "--dir", str(d)]  # fmt: skip
            note("restore: tiffin --into mysqldata", timed(argv, env))
            shutil.rmtree(d)

        cases: list[Callable[[], None]] = [manual_backup, tiffin_backup]
        if args.before:
            cases.append(lambda: tiffin_backup(args.before, " (before)"))
        restores: list[Callable[[], None]] = [manual_restore, tiffin_restore]
        for i in range(args.repeat):
            order = cases if i % 2 == 0 else cases[::-1]
            for case in order:
                case()
        for i in range(args.repeat):
            order = restores if i % 2 == 0 else restores[::-1]
            for case in order:
                case()
        if not args.no_logical:
            logical(db, work, env, conn, secret, note, sizes)
    lines = table(summary, times, sizes, args.repeat)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        Path(args.output).write_text(text)


def logical(
    db: MariaDB,
    work: Path,
    env: dict[str, str],
    conn: str,
    secret: Path,
    note: Callable[[str, float], None],
    sizes: dict[str, int],
) -> None:
    """Once each, for information: mariadb-dump | gzip and back, mydumper and myloader."""
    dump = work / "dump.sql.gz"
    script = (
        f"mariadb-dump --defaults-extra-file={secret} {conn} --single-transaction "
        f"--databases bench --quick --hex-blob | gzip -6 > {dump}"
    )
    note("backup: mariadb-dump | gzip -6 (once)", timed(shell(script), env))
    sizes["backup: mariadb-dump | gzip -6 (once)"] = dump.stat().st_size
    mydump = work / "mydumper"
    script = (
        f"mydumper --defaults-file={secret} {conn} --threads 2 --trx-consistency-only "
        f"--compress -B bench -o {mydump}"
    )
    note("backup: mydumper --threads 2 --compress (once)", timed(shell(script), env))
    sizes["backup: mydumper --threads 2 --compress (once)"] = du(mydump)
    db.sql("DROP DATABASE bench")
    script = f"gunzip -c {dump} | mariadb --defaults-extra-file={secret} {conn}"
    note("restore: gunzip | mariadb (once)", timed(shell(script), env))
    db.sql("DROP DATABASE bench")
    script = f"myloader --defaults-file={secret} {conn} --threads 2 -d {mydump}"
    note("restore: myloader --threads 2 (once)", timed(shell(script), env))


def table(
    summary: str, times: dict[str, list[float]], sizes: dict[str, int], repeat: int
) -> list[str]:
    out = [
        f"MariaDB 10.11, bench.datasets at this scale: {summary}; medians of {repeat} "
        "interleaved rounds (the logical tools once).",
        "",
        "| case | wall (s) | runs | stored (MB) |",
        "|---|---:|---:|---:|",
    ]
    for label, samples in times.items():
        size = sizes.get(label)
        shown = f"{size / 1e6:.0f}" if size else ""
        cell = label.replace("|", "\\|")
        out.append(f"| {cell} | {statistics.median(samples):.2f} | {len(samples)} | {shown} |")
    ratios = [
        (
            "backup",
            "backup: tiffin --physical --compress zstd",
            "backup: mariabackup --stream | zstd -T0 -3",
        ),
        ("restore", "restore: tiffin --into mysqldata", "restore: unpack + prepare + copy-back"),
        (
            "backup before",
            "backup: tiffin (before) --physical --compress zstd",
            "backup: mariabackup --stream | zstd -T0 -3",
        ),
    ]
    out.append("")
    for name, ours, theirs in ratios:
        if ours in times and theirs in times:
            r = statistics.median(times[ours]) / statistics.median(times[theirs])
            out.append(f"- {name}: tiffin / manual = {r:.2f} (goal ≤ 1.05)")
    return out


if __name__ == "__main__":
    os.umask(0o022)
    main()

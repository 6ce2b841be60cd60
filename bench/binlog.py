"""Point-in-time recovery for MariaDB, measured side by side on the same data (issue 15).

1. Replay: a tiny dump, then ~MB megabytes of ROW binary logs written over several logs;
   `tiffin restore latest --into mysql` (dump + replay from the archive) against the manual
   `mariadb < dump; mariadb-binlog --start-position P FILES | mariadb`, interleaved, medians.
2. Archive lag: `tiffin binlog --follow --max-lag L` under a steady write load; for each log
   published, the seconds from its first event to its appearance in the archive.
3. For information: a full logical dump and restore, tiffin (gzip) against mydumper/myloader
   --threads 2 (Debian's mydumper, compressed with -c).

Run: .venv/bin/python -m bench.binlog [--mb 200] [--runs 3] [--lag 10] [--scale 0.2]
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench.datasets import build_mariadb
from tests.servers.mariadb import MariaDB

BINLOG = ("--log-bin=bin", "--server-id=1", "--binlog-format=ROW", "--max-binlog-size=64M")
TIFFIN = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "tiffin")


def client(db: MariaDB) -> list[str]:
    return ["mariadb", "--no-defaults", "-uroot", f"--socket={db.socket}"]


def tiffin(args: list[str], db: MariaDB, home: Path) -> float:
    env = {**os.environ, "HOME": str(home), **db.client_env()}
    t0 = time.monotonic()
    done = subprocess.run([TIFFIN, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"tiffin {args[0]} failed: {done.stderr}")
    return time.monotonic() - t0


def write_load(db: MariaDB, megabytes: int) -> None:
    """About MEGABYTES of ROW binary log: batches of 5,000 rows of ~200 bytes, one per trx."""
    db.sql("CREATE TABLE `load` (id INT PRIMARY KEY, pad VARCHAR(250)) ENGINE=InnoDB", "shop")
    rows = megabytes * 1_000_000 // 230
    for start in range(0, rows, 5000):
        db.sql(
            "INSERT INTO `load` SELECT seq, CONCAT(SHA2(seq, 256), REPEAT('x', 120)) "
            f"FROM seq_{start + 1}_to_{start + 5000}",
            "shop",
        )


def replay(mb: int, runs: int, work: Path) -> dict[str, object]:
    src = MariaDB(server_args=BINLOG).start()
    dst = MariaDB(server_args=("--skip-log-bin",)).start()
    try:
        out = work / "b"
        src.sql("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY) ENGINE=InnoDB")
        conn = [*src.conn_args(), "--label", "shop"]
        tiffin(["backup", "mysql", "local", str(out), *conn, "--database", "shop"], src, work)
        write_load(src, mb)
        tiffin(["binlog", "local", str(out), *conn], src, work)
        [name] = [p.name[: -len(".manifest.json")] for p in out.glob("*.manifest.json")]
        coords = json.loads((out / f"{name}.manifest.json").read_text())["source"]["binlog"]
        logs = sorted(p.name for p in src.datadir.glob("bin.[0-9]*"))
        logs = [n for n in logs if n >= coords["file"]]
        plain = work / "dump.sql"
        subprocess.run(["bash", "-c", f"zcat '{out / name}' > '{plain}'"], check=True)
        size = sum((src.datadir / n).stat().st_size for n in logs)
        times: dict[str, list[float]] = {"manual": [], "tiffin": []}
        restore = ["restore", "local", str(out), "latest", "--into", "mysql", *dst.conn_args()]
        for _ in range(runs):
            for way in ("manual", "tiffin"):
                dst.sql("DROP DATABASE IF EXISTS shop; CREATE DATABASE shop")
                if way == "tiffin":
                    restore_db = [*restore, "--database", "shop"]
                    times[way].append(tiffin(restore_db, dst, work))
                    continue
                files = " ".join(str(src.datadir / n) for n in logs)
                pipe = (
                    f"{' '.join(client(dst))} shop < '{plain}' && mariadb-binlog --no-defaults "
                    f"--start-position={coords['position']} {files} | {' '.join(client(dst))}"
                )
                t0 = time.monotonic()
                subprocess.run(["bash", "-c", pipe], check=True, capture_output=True)
                times[way].append(time.monotonic() - t0)
                assert dst.sql("SELECT COUNT(*) FROM shop.load") != "0"
        med = {k: statistics.median(v) for k, v in times.items()}
        return {
            "binlog_bytes": size,
            "logs": len(logs),
            "seconds": times,
            "median": med,
            "throughput_ratio": med["manual"] / med["tiffin"],
        }
    finally:
        dst.close()
        src.close()


def lag(max_lag: float, seconds: float, work: Path) -> dict[str, object]:
    src = MariaDB(server_args=BINLOG).start()
    out = work / "lag"
    stop = threading.Event()
    try:
        src.sql(
            "CREATE DATABASE shop; CREATE TABLE shop.w (id INT PRIMARY KEY AUTO_INCREMENT,"
            " pad VARCHAR(250)) ENGINE=InnoDB"
        )
        env = {**os.environ, "HOME": str(work), **src.client_env()}
        args = [TIFFIN, "binlog", "local", str(out), *src.conn_args(), "--label", "shop"]
        follower = subprocess.Popen(
            [*args, "--follow", "--max-lag", str(max_lag)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        written = [0]

        def writer() -> None:
            while not stop.is_set():
                src.sql("INSERT INTO w (pad) SELECT REPEAT('y', 200) FROM seq_1_to_500", "shop")
                written[0] += 500

        threading.Thread(target=writer, daemon=True).start()
        seen: dict[str, float] = {}
        lags: list[float] = []
        t_end = time.time() + seconds
        while time.time() < t_end:
            for rec in (out / "shop.binlog").glob("*.json") if out.exists() else []:
                if rec.name in seen:
                    continue
                seen[rec.name] = time.time()
                first = json.loads(rec.read_text())["first_time"]
                t_first = calendar.timegm(time.strptime(first, "%Y-%m-%dT%H:%M:%SZ"))
                lags.append(seen[rec.name] - t_first)
            time.sleep(0.1)
        stop.set()
        follower.send_signal(signal.SIGTERM)
        follower.wait(120)
        return {
            "max_lag_option": max_lag,
            "logs_published": len(lags),
            "lag_max": max(lags) if lags else None,
            "lag_median": statistics.median(lags) if lags else None,
            "rows_written": written[0],
        }
    finally:
        stop.set()
        src.close()


def full(scale: float, work: Path) -> dict[str, object]:
    src = MariaDB(server_args=("--skip-log-bin",)).start()
    dst = MariaDB(server_args=("--skip-log-bin",)).start()
    try:
        summary = build_mariadb(src, scale)
        out, mydir = work / "full", work / "mydumper"
        t = {}
        t["tiffin_dump"] = tiffin(
            ["backup", "mysql", "local", str(out), *src.conn_args(), "--database", "bench"],
            src,
            work,
        )
        t0 = time.monotonic()
        subprocess.run(
            [
                "mydumper",
                "--threads",
                "2",
                "-c",
                "-S",
                str(src.socket),
                "-u",
                "root",
                "-B",
                "bench",
                "-o",
                str(mydir),
            ],
            check=True,
            capture_output=True,
        )
        t["mydumper"] = time.monotonic() - t0
        restore = ["restore", "local", str(out), "latest", "--into", "mysql", *dst.conn_args()]
        dst.sql("CREATE DATABASE bench")
        t["tiffin_restore"] = tiffin([*restore, "--database", "bench"], dst, work)
        dst.sql("DROP DATABASE bench")
        t0 = time.monotonic()
        subprocess.run(
            [
                "myloader",
                "--threads",
                "2",
                "-S",
                str(dst.socket),
                "-u",
                "root",
                "-d",
                str(mydir),
                "-o",
            ],
            check=True,
            capture_output=True,
        )
        t["myloader"] = time.monotonic() - t0
        sizes = {
            "tiffin_bytes": sum(p.stat().st_size for p in out.glob("*.gz")),
            "mydumper_bytes": sum(p.stat().st_size for p in mydir.iterdir()),
        }
        return {"data": summary, "seconds": t, **sizes}
    finally:
        dst.close()
        src.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=200)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--lag", type=float, default=10.0)
    p.add_argument("--lag-seconds", type=float, default=60.0)
    p.add_argument("--scale", type=float, default=0.2)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tiffin-bench-binlog-"))
    try:
        result = {
            "replay": replay(a.mb, a.runs, work),
            "lag": lag(a.lag, a.lag_seconds, work),
            "full": full(a.scale, work),
        }
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

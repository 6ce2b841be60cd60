"""What watching costs a backup (SPEC §7): a small `data` backup without metrics, with
--metrics-file into a file 500 other jobs share, and the shell way users write one by hand
after the backup (printf > tmp && mv); rounds interleaved, medians, ratios within one run.
Then the merge alone, in process, on files of 10 to 1,000 jobs.

    .venv/bin/python -m bench.watch --repeat 7
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import generate_latest

from tests.servers.env import tiffin_env
from tiffin.tell import metrics

HAND = (
    "{tiffin} backup data local {store} --dir {data} --label hand && "
    'printf \'tiffin_last_success_timestamp_seconds{{job="hand-data"}} %s\\n\' "$(date +%s)" '
    "> {prom}.tmp && mv {prom}.tmp {prom}"
)


def shared_file(path: Path, jobs: int) -> None:
    """Write a metrics file holding JOBS jobs' backup series, as tiffin writes them."""
    series = {}
    for i in range(jobs):
        outcome = metrics.Outcome(
            metrics.BACKUP, f"job{i}", "pgsql", f"s3://b/{i}", True, 1e9, 3, i
        )
        key = tuple(outcome.labels()[k] for k in metrics.LABELS)
        series.update({(name, key): value for name, value in outcome.values().items()})
    path.write_bytes(generate_latest(metrics._registry(series)))


def main(argv: list[str]) -> int:
    args = _parse(argv)
    tiffin = str(Path(sys.executable).with_name("tiffin"))
    root = Path(tempfile.mkdtemp(prefix="tiffin-bench-watch-"))
    try:
        data = root / "data"
        data.mkdir()
        for i in range(20):
            (data / f"f{i}.txt").write_text("the menu\n" * 2000)
        prom = root / "shared.prom"
        shared_file(prom, 500)
        env = tiffin_env(home=root / "home")
        cases = {
            "backup": [tiffin, "backup", "data", "local", str(root / "s1"), "--dir", str(data)],
            "backup --metrics-file (500 jobs in it)": [
                *[tiffin, "backup", "data", "local", str(root / "s2"), "--dir", str(data)],
                *["--metrics-file", str(prom)],
            ],
            "backup && printf > tmp && mv (by hand)": [
                "sh",
                "-c",
                HAND.format(tiffin=tiffin, store=root / "s3", data=data, prom=root / "hand.prom"),
            ],
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.repeat):
            for label, cmd in cases.items():
                t0 = time.perf_counter()
                subprocess.run(cmd, env=env, check=True, capture_output=True)
                times[label].append(time.perf_counter() - t0)
                time.sleep(1.05)  # names are per second: the next run of a case gets a new one
        base = statistics.median(times["backup"])
        print(f"| case (median of {args.repeat}) | seconds | vs backup |\n|---|---|---|")
        for label, values in times.items():
            m = statistics.median(values)
            print(f"| {label} | {m:.3f} | {m / base:.2f} |")
        print("\n| merge into a file of N jobs (in process, median of 15) | ms |\n|---|---|")
        for jobs in (10, 100, 500, 1000):
            path = root / f"m{jobs}.prom"
            shared_file(path, jobs)
            one = metrics.Outcome(metrics.BACKUP, "job1", "pgsql", "s3://b/1", True, 2e9, 3, 1)
            samples = []
            for _ in range(15):
                t0 = time.perf_counter()
                metrics.write_file(str(path), one)
                samples.append(time.perf_counter() - t0)
            print(f"| {jobs} | {statistics.median(samples) * 1000:.1f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

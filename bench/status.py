"""tiffin status over a long history: JOBS jobs of BACKUPS backups each on one local target.

    .venv/bin/python -m bench.status                    # 20 jobs x 400 backups, 5 rounds
    .venv/bin/python -m bench.status --jobs 20 --backups 400 --repeat 5

Each job's first backup is a real one (`tiffin backup data`); the rest are copies of it under
the names and manifests of the hours before, as tiffin writes them, with a drill record on the
newest. Then, rounds interleaved (A B C ... A B C ...), medians: `ls -l` of the folder (the
floor: one listing), `tiffin status --config` of every job, the same with `--html`, `tiffin
status local DIR` (the target named), and `tiffin list --json` (which reads every manifest:
what status avoids). The goal: status under 2 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.helpers import tiffin_exe
from tests.servers.env import tiffin_env


def build(root: Path, jobs: int, per_job: int) -> tuple[Path, Path, dict[str, str]]:
    """Make the target folder, the config of its jobs and the environment; return them."""
    env = tiffin_env(root / "home")
    data, target = root / "data", root / "target"
    data.mkdir()
    (data / "f.txt").write_text("status bench\n" * 100)
    config = root / "jobs.toml"
    lines = []
    for j in range(jobs):
        label = f"job{j:02d}"
        cmd = [tiffin_exe(), "backup", "data", "local", str(target), "--dir", str(data)]
        subprocess.run([*cmd, "--label", label], env=env, check=True, stdout=subprocess.DEVNULL)
        (real,) = [p.name for p in target.glob(f"{label}_*.manifest.json")]
        name = real.removesuffix(".manifest.json")
        manifest = json.loads((target / real).read_text())
        stamp = name[len(label) + 1 : len(label) + 20]
        when = datetime.strptime(stamp, "%Y-%m-%d_%H:%M:%S").replace(tzinfo=UTC)
        body = (target / name).read_bytes()
        for i in range(1, per_job):
            t = when - timedelta(hours=i)
            other = name.replace(stamp, t.strftime("%Y-%m-%d_%H:%M:%S"))
            started = t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
            finished = (t + timedelta(seconds=1 + i % 7)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
            (target / other).write_bytes(body)
            copy = {**manifest, "name": other, "started": started, "finished": finished}
            (target / f"{other}.manifest.json").write_text(json.dumps(copy, indent=2))
        drill = {"name": name, "drilled_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "passed": True}
        (target / f"{name}.drill.json").write_text(json.dumps(drill))
        lines += [f"[jobs.{label}]", 'what = "data"', f'to = "file://{target}"']
        lines += [f'dir = "{data}"', f'label = "{label}"', ""]
    config.write_text("\n".join(lines))
    return target, config, env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--backups", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tiffin-bench-status-"))
    try:
        t0 = time.monotonic()
        target, config, env = build(root, args.jobs, args.backups)
        files = len(list(target.iterdir()))
        print(f"built {args.jobs} jobs x {args.backups} backups ({files} files) in "
              f"{time.monotonic() - t0:.0f} s", file=sys.stderr)  # fmt: skip
        exe = tiffin_exe()
        cases = {
            "ls -l (one listing: the floor)": ["ls", "-l", str(target)],
            "tiffin status --config (all jobs)": [exe, "status", "--config", str(config)],
            "tiffin status --config --html": [
                exe, "status", "--config", str(config), "--html", str(root / "p.html"),
            ],
            "tiffin status local DIR": [exe, "status", "local", str(target)],
            "tiffin list --json (every manifest)": [exe, "list", "local", str(target), "--json"],
        }  # fmt: skip
        times: dict[str, list[float]] = {c: [] for c in cases}
        for _ in range(args.repeat):
            for case, argv in cases.items():
                start = time.monotonic()
                proc = subprocess.run(argv, env=env, capture_output=True, check=False)
                times[case].append(time.monotonic() - start)
                if proc.returncode != 0:
                    sys.exit(f"{case} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
        print(f"\n{args.jobs} jobs x {args.backups} backups on one local target, "
              f"median of {args.repeat} interleaved rounds:\n")  # fmt: skip
        print("| case | median s | min s | max s |")
        print("|---|---:|---:|---:|")
        for case, ts in times.items():
            print(f"| {case} | {statistics.median(ts):.2f} | {min(ts):.2f} | {max(ts):.2f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Run one command and measure it: wall time, CPU time of it and all its children, peak RSS,
temp disk and stored size. Medians over interleaved repeats make the figures of a table."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SIZE_LINE = re.compile(r"size is (\d+) bytes")
# Disk writes of a tiffin run that are not temp space: its manifest, and the filesystem's
# own blocks (pages, extent tree, directory), which grow with the backup: 130 KB for 600 MB.
METADATA = 1 << 20


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds of the command and every child it waited for
    rss_kib: int  # tiffin's own peak RSS; for a shell pipeline its largest process
    temp_bytes: int  # bytes written to local scratch space (not to the target)
    stored: int  # bytes stored at the target


@dataclass
class Result:
    """The samples of one case, in run order."""

    label: str
    group: str
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(float(getattr(s, attr)) for s in self.samples)


class CommandFailed(RuntimeError):
    pass


def run(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    probe: bool = False,
    output_file: str | None = None,
    output_is_temp: bool = False,
    stored: Callable[[str], int] | None = None,
    local_target: bool = False,
) -> Sample:
    """Run ARGV to its end; return its Sample. Raise CommandFailed (quoting stderr) unless it
    exits 0. PROBE: ARGV runs bench.probe, which reports tiffin's own RSS and disk writes.
    OUTPUT_FILE: the file the command writes (its size is the stored size, and the temp disk
    too if OUTPUT_IS_TEMP: a file uploaded afterwards); removed after.
    STORED: given the command's stdout, return the stored size (default: tiffin's report)."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as scratch:
        out_path = os.path.join(scratch, "out")
        err_path = os.path.join(scratch, "err")
        probe_path = os.path.join(scratch, "probe.json")
        child_env = dict(env, BENCH_PROBE=probe_path) if probe else dict(env)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t0 = time.monotonic()
            proc = subprocess.Popen(
                list(argv), env=child_env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
        text = Path(out_path).read_text(encoding="utf-8", errors="replace")
        if proc.returncode != 0:
            tail = Path(err_path).read_text(encoding="utf-8", errors="replace")[-2000:]
            raise CommandFailed(f"{' '.join(argv)[:300]} exited {proc.returncode}:\n{tail}")
        rss = usage.ru_maxrss
        temp = 0
        if probe:
            with open(probe_path, encoding="ascii") as f:
                figures = json.load(f)
            rss = figures["maxrss_kib"]
            temp = figures.get("write_bytes", 0)
        if output_file:
            size = os.path.getsize(output_file)
            temp = size if output_is_temp else 0
            os.unlink(output_file)
        else:
            size = stored(text) if stored else tiffin_size(text)
        if probe and local_target:
            temp = max(0, temp - size)  # the backup itself is not temp
        if probe and temp <= METADATA:
            temp = 0
        return Sample(wall, usage.ru_utime + usage.ru_stime, rss, temp, size)


def tiffin_size(stdout: str) -> int:
    """Given tiffin's report, return the stored size it states (0 if it states none)."""
    m = SIZE_LINE.search(stdout)
    return int(m.group(1)) if m else 0


def shell(script: str) -> list[str]:
    """Given a bash script, return the argv that runs it with pipefail."""
    return ["bash", "-o", "pipefail", "-e", "-c", script]


def install_tiffin(work: Path, checkout: Path | None = None) -> str:
    """Install CHECKOUT (default: this tree) as a user does, in WORK: scripts/install.sh, a
    non-editable venv with its bytecode compiled that every OS user can run, and the command
    that script writes. Return the command's path."""
    root = checkout or Path(__file__).resolve().parent.parent
    prefix, bindir = work / "tiffin", work / "bin"
    subprocess.run(
        ["bash", str(root / "scripts/install.sh"), str(prefix), str(bindir)],
        check=True,
        capture_output=True,
    )
    return str(bindir / "tiffin")


PROBE = Path(__file__).resolve().parent / "probe.py"  # run by an installed Python with -I


def installed_python(command: str) -> str:
    """Given the command install_tiffin() returned, return its venv's Python (beside the
    command it links to, whatever its first line holds)."""
    return str(Path(command).resolve().parent / "python")

"""status --html rendered by a real browser: Debian's headless Chromium, started once for a
screenshot and once for the DOM it builds, each stopped by the PID the test started. The page
must show one row and one chart per job, draw something, and ask for nothing from outside."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.helpers import tiffin
from tests.e2e.test_status import age, backup
from tests.png import colours
from tests.servers.env import tiffin_env

LABELS = ("ramen", "udon", "soba")


def chromium(args: list[str], profile: Path, timeout: float = 180) -> str:
    """Run headless Chromium with ARGS in its own profile; return its stdout. On a time-out
    its process group (the one it leads) is killed."""
    exe = shutil.which("chromium")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    argv = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, proc.returncode
    return out


def test_the_page_renders_a_row_and_a_chart_per_job_and_fetches_nothing(tmp_path: Path) -> None:
    env = tiffin_env(tmp_path / "home")
    data, folder = tmp_path / "data", tmp_path / "t"
    data.mkdir()
    for n, label in enumerate(LABELS):
        for i in range(4):  # sizes that differ, times days apart: lines with a slope
            name = backup(folder, data, env, label, 2000 * (n + 1) + 900 * i)
            age(folder, name, 4 - i + n / 10)
        backup(folder, data, env, label, 2000 * (n + 1) + 3600)  # the newest: today
    page = tmp_path / "status.html"
    tiffin(["status", "local", str(folder), "--html", str(page)], env)
    url = page.as_uri()
    shot = tmp_path / "shot.png"
    chromium([f"--screenshot={shot}", "--window-size=1200,900", url], tmp_path / "p1")
    dom = chromium(["--dump-dom", url], tmp_path / "p2")
    assert len(re.findall(r'<tr class="job">', dom)) == len(LABELS)
    assert len(re.findall(r'<figure class="chart"', dom)) == len(LABELS)
    for label in LABELS:
        assert f"<figcaption>{label}-data</figcaption>" in dom
    assert len(re.findall(r"<polyline ", dom)) == 2 * len(LABELS)  # size and duration
    assert not re.search(r"https?://", dom, re.IGNORECASE)
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", dom)
    seen = colours(shot)
    assert len(seen) >= 8, seen  # text, verdict colours, chart lines: not a blank page

"""The progress line: shown while stderr is a terminal (a real pseudo-terminal here), never
under a pipe (cron) or --quiet."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.e2e.helpers import backups, tiffin, tiffin_exe
from tests.servers.env import tiffin_env

LINE = re.compile(
    r"(\d+(?:\.\d)?) (B|KiB|MiB|GiB) stored, \d+(?:\.\d)? (?:B|KiB|MiB|GiB)/s, "
    r"\d+:\d\d:\d\d elapsed"
)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@pytest.fixture(scope="module")
def big_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress") / "data"
    root.mkdir()
    for i in range(4):  # incompressible: the backup takes a second or so
        (root / f"blob{i}").write_bytes(os.urandom(10 << 20))
    return root


def run_with_terminal_stderr(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run tiffin with stderr on a pseudo-terminal and stdout on a pipe; return the exit
    status, what reached the terminal and stdout."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [tiffin_exe(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    seen = bytearray()
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not data:
            break
        seen += data
    os.close(master)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(timeout=60), seen.decode("utf-8", "replace"), stdout


def test_progress_line_shows_bytes_rate_and_elapsed_on_a_terminal(big_dir, tmp_path):
    out = tmp_path / "b"
    status, terminal, stdout = run_with_terminal_stderr(
        ["backup", "data", "local", str(out), "--dir", str(big_dir)], tiffin_env(tmp_path / "h")
    )
    assert status == 0, terminal
    found = LINE.findall(ANSI.sub("", terminal.replace("\r", "\n")))
    assert len(found) >= 2, terminal
    assert any(float(n) > 0 for n, _ in found)
    [name] = backups(out)
    size_mib = (out / name).stat().st_size / (1 << 20)
    last, unit = found[-1]
    assert unit == "MiB" and abs(float(last) - size_mib) < 0.1  # the last figures are the total
    assert terminal.endswith("\r\x1b[K")  # the line is cleared for the report
    assert stdout.startswith(f"Backup {name} completed.")


def test_no_progress_with_quiet_even_on_a_terminal(big_dir, tmp_path):
    status, terminal, stdout = run_with_terminal_stderr(
        ["backup", "data", "local", str(tmp_path / "b"), "--dir", str(big_dir), "--quiet"],
        tiffin_env(tmp_path / "h"),
    )
    assert status == 0 and terminal == ""
    assert stdout.startswith("Backup ")


def test_no_progress_when_stderr_is_not_a_terminal(big_dir, tmp_path):
    r = tiffin(
        ["backup", "data", "local", str(tmp_path / "b"), "--dir", str(big_dir)],
        tiffin_env(tmp_path / "h"),
    )
    assert r.stderr == "" and r.stdout.startswith("Backup ")


def test_progress_and_report_together_under_script(big_dir, tmp_path):
    """`script` gives stdout and stderr one terminal, as an interactive shell has."""
    out = tmp_path / "b"
    cmd = f"{tiffin_exe()} backup data local {out} --dir {big_dir}"
    r = subprocess.run(
        ["script", "-qec", cmd, "/dev/null"],
        env=tiffin_env(tmp_path / "h"),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stdout
    plain = ANSI.sub("", r.stdout)
    assert LINE.search(plain.replace("\r", "\n"))
    [name] = backups(out)
    assert f"Backup {name} completed." in plain

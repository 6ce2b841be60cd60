"""Every child tiffin starts dies with tiffin, even a tiffin killed by SIGKILL: a child in
its own process group (so that a stalled one is killed with its own) would otherwise live
on, as a mariadb-binlog blocked opening a named pipe that no one will ever read did."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

# tiffin starts its children from worker threads that end long before tiffin does: the
# child must outlive the thread that asked for it, and die only with the process.
SCRIPT = textwrap.dedent(
    """
    import os, sys, threading, time
    from tiffin.engine import process
    kids = []
    def start(cmd):
        kids.append(process.Child(cmd, name="kid"))
    for cmd in (["sleep", "300"], ["sh", "-c", "mkfifo f; exec cat > f"]):
        t = threading.Thread(target=start, args=(cmd,))
        t.start()
        t.join()
    print(" ".join(str(k.proc.pid) for k in kids), flush=True)
    time.sleep(300)
    """
)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_children_outlive_their_thread_and_die_with_tiffin(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2
        time.sleep(0.3)
        assert all(alive(p) for p in pids), "a child died with the thread that started it"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [p for p in pids if alive(p)]
    finally:
        proc.kill()
        proc.wait()
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"children {left} outlived a SIGKILLed tiffin"


def test_a_missing_tool_is_still_one_sentence():
    from tiffin.engine import process
    from tiffin.errors import BackupFailed

    with pytest.raises(BackupFailed, match="is not installed"):
        process.run(["/nonexistent/tool"])

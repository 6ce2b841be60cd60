"""How tiffin.engine.process forks: every child dies with tiffin.

A child leads its own process group (a stalled one is killed with its own), so nothing
would reap it after a tiffin killed by SIGKILL: a mariadb-binlog blocked opening a named pipe
that no one will read lived on for ever. Each child is therefore started through
util-linux's setpriv, which asks the kernel for SIGKILL when its parent thread ends, then
execs the command (the same process), and it is forked from the one thread that lives as
long as tiffin, so it outlives the worker thread that wanted it but never tiffin. A
preexec_fn could ask as well, but Python code between fork and exec is not safe in a process
with threads (logging's fork handlers printed "release unlocked lock"). Without setpriv,
children start as before. Left: the moment between the fork and setpriv's prctl.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

SETPRIV = shutil.which("setpriv", path="/usr/bin:/bin")

_Start = Callable[[], subprocess.Popen[bytes]]
_starts: queue.SimpleQueue[tuple[_Start, Future[subprocess.Popen[bytes]]]] | None = None
_lock = threading.Lock()


def popen(cmd: Sequence[str], env: Mapping[str, str], **options: Any) -> subprocess.Popen[bytes]:
    """Start CMD with ENV (and Popen's OPTIONS) as a child that dies with tiffin. Raise
    FileNotFoundError, as Popen would, if CMD's program is not found with ENV's PATH."""
    if not found(cmd[0], env):
        raise FileNotFoundError(cmd[0])
    argv = [SETPRIV, "--pdeathsig", "KILL", "--", *cmd] if SETPRIV else list(cmd)
    done: Future[subprocess.Popen[bytes]] = Future()
    _queue().put((lambda: subprocess.Popen(argv, env=env, **options), done))
    return done.result()


def found(name: str, env: Mapping[str, str]) -> bool:
    """Return whether NAME is a program that exec would find with ENV's PATH."""
    if os.sep in name:
        return os.path.isfile(name) and os.access(name, os.X_OK)
    return shutil.which(name, path=env.get("PATH", os.defpath)) is not None


def _queue() -> queue.SimpleQueue[tuple[_Start, Future[subprocess.Popen[bytes]]]]:
    """Return the queue of the thread that forks every child, starting it the first time."""
    global _starts
    with _lock:
        if _starts is None:
            _starts = queue.SimpleQueue()
            threading.Thread(
                target=_forker, args=(_starts,), daemon=True, name="tiffin-spawn"
            ).start()
        return _starts


def _forker(starts: queue.SimpleQueue[tuple[_Start, Future[subprocess.Popen[bytes]]]]) -> None:
    while True:
        start, done = starts.get()
        try:
            done.set_result(start())
        except BaseException as exc:  # handed to the caller, which raises it
            done.set_exception(exc)


def _forked() -> None:
    """In a forked child (the WAL fetch helper): the forking thread was not copied."""
    global _starts
    _starts = None


os.register_at_fork(after_in_child=_forked)

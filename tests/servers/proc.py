"""Start, watch and stop server processes by the PID this process started.

Never by name: no pkill/killall. A server leads its own session
(``start_new_session=True``), so its process group id is its PID.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import pytest

from .env import scrubbed_environ
from .ports import port_open

__all__ = [
    "CommandError",
    "ManagedProcess",
    "ServerError",
    "make_workdir",
    "require_executable",
    "require_module",
    "run_command",
    "unavailable",
    "wait_port",
    "wait_until",
]

LOG_TAIL = 8000
_live: set[ManagedProcess] = set()


class ServerError(RuntimeError):
    """A server failed to start or died."""


class CommandError(RuntimeError):
    """A helper command (client, initdb, ssh-keygen, ...) failed."""


def unavailable(what: str) -> NoReturn:
    """Fail the test when env CI is true, skip it otherwise."""
    msg = f"test server unavailable: {what}"
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(msg)
    pytest.skip(msg)


def require_executable(path: str) -> str:
    """Absolute path of ``path`` (a name or a path); fail in CI, skip otherwise."""
    found = shutil.which(path)
    if found is None:
        unavailable(f"{path} not found")
    return str(found)


def require_module(name: str) -> None:
    """Make sure a Python module is importable; fail in CI, skip otherwise."""
    if importlib.util.find_spec(name) is None:
        unavailable(f"Python module {name} not installed")


# Where servers and other users' folders go: a folder every OS user can traverse, as /tmp;
# scripts/test.sh points it at a tmpfs (tests' data never needs to outlive the run).
SHARED_TMP = os.environ.get("TIFFIN_TEST_TMP") or "/tmp"


def make_workdir(name: str, owner: str | None = None, mode: int = 0o700) -> Path:
    """A fresh temp dir under SHARED_TMP (traversable by other users, unlike tmp_path)."""
    path = Path(tempfile.mkdtemp(prefix=f"tiffin-{name}-", dir=SHARED_TMP))
    path.chmod(mode)
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def run_command(
    argv: Sequence[str],
    *,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    **kwargs: object,
) -> str:
    """Run a command to completion; return stdout, raise CommandError with stderr."""
    proc = subprocess.run(
        list(argv),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else scrubbed_environ(),
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    if proc.returncode != 0:
        raise CommandError(
            f"{argv[0]} exited {proc.returncode}\nstderr:\n{proc.stderr}\nstdout:\n{proc.stdout}"
        )
    return str(proc.stdout)


def _starttime(pid: int) -> int | None:
    """Kernel start time of ``pid`` (identity check against PID reuse)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, starttime) of every live descendant of ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found: list[tuple[int, int]] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        start = _starttime(child)
        if start is not None:
            found.append((child, start))
            todo.extend(children.get(child, []))
    return found


def _signal_if_same(procs: Sequence[tuple[int, int]], sig: int) -> None:
    for pid, start in procs:
        if _starttime(pid) == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


class ManagedProcess:
    """One long-running child, logging to ``log_path``, stopped by its PID."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 10.0,
        **popen_kwargs: object,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self.popen_kwargs = popen_kwargs
        self._popen: subprocess.Popen[bytes] | None = None
        self._paused: list[tuple[int, int]] = []

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} start: {self.argv}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self.popen_kwargs,  # type: ignore[call-overload]
            )
        _live.add(self)

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def _exited(self) -> bool:
        """True once the child has exited; does not reap it (the PID stays ours)."""
        if self._popen is None or self._popen.returncode is not None:
            return True
        try:
            flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
            return os.waitid(os.P_PID, self._popen.pid, flags) is not None
        except ChildProcessError:
            return True

    def alive(self) -> bool:
        return not self._exited()

    def _wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._exited():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def pause(self) -> None:
        """SIGSTOP the PID and all its descendants: the server hangs, open
        connections included (e.g. postgres backends, sshd session children)."""
        if self._popen is None or self._exited():
            raise ServerError(f"cannot pause {self.argv[0]}: not running")
        me = _starttime(self._popen.pid)
        procs = [(self._popen.pid, me)] if me is not None else []
        procs += _descendants(self._popen.pid)
        _signal_if_same(procs, signal.SIGSTOP)
        self._paused = procs

    def resume(self) -> None:
        _signal_if_same(self._paused, signal.SIGCONT)
        self._paused = []

    def stop(self) -> int | None:
        """Stop gracefully (stop_signal, then SIGKILL after stop_timeout). Idempotent."""
        popen = self._popen
        if popen is None:
            return None
        if popen.returncode is None:
            others = _descendants(popen.pid)
            self.resume()
            if not self._exited():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(popen.pid, self.stop_signal)
                if not self._wait_exit(self.stop_timeout):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(popen.pid, signal.SIGKILL)
            # The leader is a zombie at worst, so its process group id is still ours.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
            # Descendants that left the group (e.g. sshd connection children).
            _signal_if_same(others, signal.SIGTERM)
            deadline = time.monotonic() + 2
            while any(_starttime(p) == s for p, s in others) and time.monotonic() < deadline:
                time.sleep(0.02)
            _signal_if_same(others, signal.SIGKILL)
        _live.discard(self)
        return popen.returncode


def wait_until(
    ready: Callable[[], bool],
    what: str,
    timeout: float = 60,
    proc: ManagedProcess | None = None,
    details: Callable[[], str] = str,
) -> None:
    """Poll ``ready`` until true; fail fast (with ``details()``) if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and not proc.alive():
            raise ServerError(f"{what}: process exited before it was ready\n{details()}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise ServerError(f"{what}: not ready after {timeout:.0f}s\n{details()}")
        time.sleep(0.05)


def wait_port(
    host: str,
    port: int,
    timeout: float = 60,
    proc: ManagedProcess | None = None,
    details: Callable[[], str] = str,
) -> None:
    """Wait until ``host:port`` accepts TCP connections."""
    wait_until(lambda: port_open(host, port), f"port {host}:{port}", timeout, proc, details)


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_live):
        proc.stop()

"""The only place that spawns processes (forking through tiffin.engine.spawn).

Commands are tuples built by pure functions elsewhere and run here without a shell.
Secrets reach children only through an inherited pipe descriptor or the child's own
environment, never through argv.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING

from tiffin.engine import spawn
from tiffin.engine.streams import Reader
from tiffin.engine.watchdog import NO_GREETING, Server, Stalled, patience, set_patience
from tiffin.errors import BackupFailed, ToolFailed

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["Server", "Stalled", "patience", "set_patience"]  # the watchdog's rules, re-exported

log = logging.getLogger("tiffin")

_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()
_ENDED = threading.Event()


def which(*names: str) -> str | None:
    """Return the path of the first of NAMES found on PATH, or None."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def secret_pipe(data: bytes) -> int:
    """Given a small secret, return the read end of a pipe holding it (to pass to a child as
    /dev/fd/N). The write end is closed, so the child reads the secret then EOF."""
    if len(data) > 60_000:
        raise BackupFailed("a secret passed to a child process is too large")
    r, w = os.pipe()
    try:
        os.write(w, data)
    finally:
        os.close(w)
    return r


def _env(extra: Mapping[str, str] | None, inherit: bool = True) -> dict[str, str]:
    env = dict(os.environ) if inherit else {}
    if extra:
        env.update(extra)
    return env


def begin() -> None:
    """Allow children again (a new run of tiffin.cli.main in the same process)."""
    _ENDED.clear()


def end() -> None:
    """Kill every child still running and start no other: tiffin is about to exit, and a
    child of its own process group would outlive it (a row count beside a failed dump)."""
    _ENDED.set()
    kill_all()


def kill_all() -> None:
    """Kill every child still running (on SIGTERM/SIGINT of tiffin itself)."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for p in procs:
        _kill_group(p)


def end_all(wait: float = 2.0) -> None:
    """Kill every child still running and wait up to WAIT seconds for each to be gone: as
    tiffin leaves, none is left behind (a ping of a hung server, a client a failure left)."""
    kill_all()
    deadline = time.monotonic() + wait
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            p.wait(max(0.0, deadline - time.monotonic()))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL PROC and its process group (each child leads one of its own), unless reaped."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            try:
                proc.kill()
            except OSError:
                pass


class Child:
    """A running child process whose stdout (or stdin) is a stream and whose stderr is kept:
    the last lines are quoted when it fails."""

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        pass_fds: Iterable[int] = (),
        stdin: int | IO[bytes] | None = subprocess.DEVNULL,
        stdout: int | IO[bytes] | None = subprocess.PIPE,
        cwd: str | None = None,
        server: Server | None = None,
        watch: float | None = None,
        inherit_env: bool = True,
        keep: tuple[str, ...] = (),
    ) -> None:
        self.name = name or os.path.basename(cmd[0])
        self.server = server
        self.stalled: float | None = None  # the seconds without progress, once killed for it
        self._progress = time.monotonic()
        self._ended = threading.Event()
        self.cmd = tuple(cmd)
        self._tail: deque[str] = deque(maxlen=12)
        self.error_lines: deque[str] = deque(maxlen=200)  # and those holding any of KEEP
        self._keep = ("ERROR", "error:", *keep)
        fds = tuple(pass_fds)
        if _ENDED.is_set():
            for fd in fds:
                os.close(fd)
            raise BackupFailed(f"{self.name} was not started: tiffin is ending")
        log.debug("running %s", " ".join(self.cmd))
        try:
            self.proc = spawn.popen(
                self.cmd,
                _env(env, inherit_env),
                stdin=stdin,
                stdout=stdout,
                stderr=subprocess.PIPE,
                pass_fds=fds,
                cwd=cwd,
                process_group=0,  # its own group: a stalled child is killed with its own
            )
        except FileNotFoundError:
            raise BackupFailed(f"{self.name} is not installed (looked for {cmd[0]})") from None
        finally:
            for fd in fds:
                os.close(fd)
        with _LIVE_LOCK:
            _LIVE.add(self.proc)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        seconds = watch if watch is not None else (patience() if server else None)
        if seconds:
            threading.Thread(target=self._watch, args=(seconds,), daemon=True).start()

    def progressed(self) -> None:
        """Note that bytes flowed from or to the child just now."""
        self._progress = time.monotonic()

    def _watch(self, seconds: float) -> None:
        """Kill the child (its group) once it made no progress for SECONDS and its server, if
        it has one with a ping, does not answer either (see Server)."""
        while not self._ended.wait(min(1.0, seconds / 4)):
            if time.monotonic() - self._progress < seconds:
                continue
            if self.server is not None and self.server.answers():
                self.progressed()  # the server works: the child waits on it (a lock ...)
                continue
            if self._ended.is_set():
                return
            self.stalled = seconds
            log.debug("%s made no progress for %g s: killing it", self.name, seconds)
            _kill_group(self.proc)
            return

    def raise_if_stalled(self) -> None:
        """Raise Stalled if the ended child was killed for making no progress, or gave up
        connecting to its server (its own connect timeout)."""
        rc = self.proc.returncode
        if rc and self.server is not None and NO_GREETING.search(self.stderr_tail):
            raise Stalled(
                f"{self.server.name} stopped answering: {self.name} could not connect within "
                f"{patience():g} seconds ({self.stderr_tail.splitlines()[-1].strip()})"
            )
        if self.stalled is None:
            return
        if self.server is None:
            raise Stalled(f"{self.name} did not answer within {self.stalled:g} seconds")
        raise Stalled(
            f"{self.server.name} stopped answering: {self.name} made no progress for "
            f"{self.stalled:g} seconds and was stopped"
        )

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._tail.append(line)
                if any(k in line for k in self._keep):
                    self.error_lines.append(line)
                log.debug("%s: %s", self.name, line)

    @property
    def stderr_tail(self) -> str:
        return "\n".join(self._tail)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to end; return its status (negative: killed by that signal)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = self.proc.wait()
        self._ended.set()
        self._reader.join(5)
        with _LIVE_LOCK:
            _LIVE.discard(self.proc)
        return rc

    def check(self, timeout: float | None = None) -> None:
        """Wait for the child to end. Raise ToolFailed, quoting its stderr, unless it exited 0."""
        rc = self.wait(timeout)
        self.raise_if_stalled()
        if rc != 0:
            raise ToolFailed(self.name, rc, self.stderr_tail)

    def kill(self) -> None:
        _kill_group(self.proc)

    def abort(self) -> None:
        """Kill the child and reap it; nothing is raised."""
        self.kill()
        for stream in (self.proc.stdout, self.proc.stdin):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self.wait()


class ToolOutput(io.RawIOBase):
    """A reader of a child's stdout that raises ToolFailed, instead of returning EOF, when the
    child did not exit 0: a failed dump can never look like a short, complete one."""

    def __init__(self, child: Child) -> None:
        super().__init__()
        out = child.proc.stdout
        assert isinstance(out, io.BufferedReader | io.FileIO)  # Popen's pipe: buffered or not
        self.child = child
        self._out = out
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        if self._done:
            return 0
        n = self._out.readinto(b) or 0
        self.child.progressed()
        if n == 0:
            self._done = True
            self.child.check()
        return int(n)

    def close(self) -> None:
        if not self.closed:
            if not self._done:
                self.child.abort()
            self._out.close()
        super().close()


def spawn_reader(
    cmd: Sequence[str],
    *,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    pass_fds: Iterable[int] = (),
    server: Server | None = None,
    keep: tuple[str, ...] = (),
) -> io.BufferedReader:
    """Start CMD and return a buffered reader of its stdout that raises ToolFailed at the end
    unless CMD exits 0. Closing the reader early kills CMD. With SERVER, CMD is killed, and
    the reader raises Stalled, when it sends nothing for patience() seconds (see Server).
    Its stderr lines holding any of KEEP are kept in its Child's error_lines."""
    child = Child(cmd, name=name, env=env, pass_fds=pass_fds, server=server, keep=keep)
    return io.BufferedReader(ToolOutput(child), buffer_size=1 << 20)


def child_of(reader: io.BufferedReader) -> Child:
    """Given a reader that spawn_reader returned, return the Child whose stdout it reads."""
    raw = reader.raw
    assert isinstance(raw, ToolOutput), "not a reader from spawn_reader"
    return raw.child


def run(
    cmd: Sequence[str],
    *,
    name: str | None = None,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    pass_fds: Iterable[int] = (),
    timeout: float | None = None,
    server: Server | None = None,
) -> str:
    """Run CMD to its end, feeding INPUT; return its stdout as text. Raise ToolFailed, quoting
    its stderr, unless it exits 0. CMD is killed, and Stalled raised, once it ran TIMEOUT
    seconds (default patience()) without ending, and SERVER, if given, does not answer."""
    child = Child(
        cmd,
        name=name,
        env=env,
        pass_fds=pass_fds,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        server=server,
        watch=timeout or patience(),
    )
    assert child.proc.stdout is not None

    def send() -> None:
        assert child.proc.stdin is not None
        try:
            child.proc.stdin.write(input or b"")
            child.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass

    if input is not None:
        threading.Thread(target=send, daemon=True).start()
    # stderr is drained by the Child's own thread (kept for the error message), so only
    # stdout is read here; the Child's watchdog kills a child that does not answer.
    out = child.proc.stdout.read()
    child.check()
    return out.decode("utf-8", "replace")


def feed(
    cmd: Sequence[str],
    reader: Reader,
    *,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    pass_fds: Iterable[int] = (),
    block: int = 1 << 20,
    server: Server | None = None,
) -> Child:
    """Run CMD with READER's bytes on its stdin, to the end. Return the ended Child (check its
    status and stderr). If reading fails, CMD is killed and the error propagates. With SERVER,
    CMD is killed, and Stalled raised, when it takes no byte for patience() seconds and SERVER
    does not answer (see Server)."""
    child = Child(
        cmd,
        name=name,
        env=env,
        pass_fds=pass_fds,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        server=server,
    )
    assert child.proc.stdin is not None
    try:
        while True:
            data = reader.read(block)
            if not data:
                break
            child.progressed()
            try:
                child.proc.stdin.write(data)
            except BrokenPipeError:
                break
            child.progressed()
        try:
            child.proc.stdin.close()
        except BrokenPipeError:
            pass
    except BaseException:
        child.abort()
        raise
    child.wait()
    child.raise_if_stalled()
    return child

"""Base class of the test servers: a workdir, a log file and one ManagedProcess."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Self

from .proc import LOG_TAIL, ManagedProcess, ServerError, make_workdir, wait_port, wait_until

__all__ = ["Server"]


class Server:
    """Base class: a workdir, a log file and one ManagedProcess."""

    name = "server"
    host = "127.0.0.1"
    port: int

    def __init__(self, workdir_owner: str | None = None, workdir_mode: int = 0o700) -> None:
        self.workdir = make_workdir(self.name, workdir_owner, workdir_mode)
        self.log_path = self.workdir / f"{self.name}.log"
        self.log_path.touch()
        self._proc: ManagedProcess | None = None

    # -- to implement -------------------------------------------------------------
    def _start(self) -> None:
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> Self:
        """Start and wait until ready; no-op when already running."""
        if not self.running:
            try:
                self._start()
            except BaseException:
                self.stop()
                raise
        return self

    def stop(self) -> None:
        """Graceful stop by PID; idempotent."""
        if self._proc is not None:
            self._proc.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and delete the workdir (kept when TIFFIN_KEEP_SERVER_DIRS is set)."""
        self.stop()
        if not os.environ.get("TIFFIN_KEEP_SERVER_DIRS"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def pause(self) -> None:
        """SIGSTOP the server (and its children) to simulate a hung server."""
        if self._proc is None:
            raise ServerError(f"{self.name} not started")
        self._proc.pause()

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.resume()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """``with server.paused(): ...`` resumes even when the block fails."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{getattr(self, 'port', '?')} pid={self.pid}>"

    # -- helpers for subclasses ---------------------------------------------------
    def _spawn(self, argv: Sequence[str], **kwargs: object) -> ManagedProcess:
        self._proc = ManagedProcess(argv, log_path=self.log_path, **kwargs)  # type: ignore[arg-type]
        self._proc.start()
        return self._proc

    def _run_logged(self, argv: Sequence[str], **kwargs: object) -> None:
        """Run a one-shot setup command, its output appended to the server log."""
        with self.log_path.open("ab") as log:
            log.write(f"\n=== run: {list(argv)}\n".encode())
            log.flush()
            proc = subprocess.run(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=300,
                **kwargs,  # type: ignore[call-overload]
            )
        if proc.returncode != 0:
            raise ServerError(f"{argv[0]} exited {proc.returncode}\n{self._tail()}")

    def _tail(self) -> str:
        return f"--- {self.name} log ({self.log_path}) ---\n{self.log_text()[-LOG_TAIL:]}"

    def _wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
        wait_until(ready, f"{self.name}: {what}", timeout, self._proc, self._tail)

    def _wait_port(self, timeout: float = 60) -> None:
        wait_port(self.host, self.port, timeout, self._proc, self._tail)

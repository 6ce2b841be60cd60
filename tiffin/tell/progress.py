"""A progress line (bytes stored, rate, elapsed) on stderr while it is a terminal.

Under cron, a pipe or --quiet nothing is shown: the report alone is printed.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

Watch = Callable[[io.RawIOBase], io.RawIOBase]
INTERVAL = 0.25


def human(n: float) -> str:
    """Given a byte count, return it with a binary unit: '512 B', '3.2 MiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def line(size: int, seconds: float) -> str:
    """Given the bytes stored so far and the seconds spent, return the progress line's text."""
    rate = size / seconds if seconds > 0 else 0.0
    secs = int(seconds)
    return (
        f"{human(size)} stored, {human(rate)}/s, "
        f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d} elapsed"
    )


class Counting(io.RawIOBase):
    """Reads through INNER, adding the length of each read to PROGRESS."""

    def __init__(self, inner: io.RawIOBase, progress: Progress) -> None:
        super().__init__()
        self.inner = inner
        self.progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        n = self.inner.readinto(b) or 0
        self.progress.size += n
        return n

    def close(self) -> None:
        self.inner.close()
        super().close()


class Progress:
    """Redraws one line on STREAM a few times a second, from a thread of its own."""

    def __init__(self, stream: TextIO, interval: float = INTERVAL) -> None:
        self.stream = stream
        self.interval = interval
        self.size = 0
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def wrap(self, raw: io.RawIOBase) -> io.RawIOBase:
        """Given the reader of the stored bytes, return one that counts them for the line."""
        return Counting(raw, self)

    def _draw(self) -> None:
        text = line(self.size, time.monotonic() - self._t0)
        try:
            self.stream.write(f"\r\x1b[K{text}")
            self.stream.flush()
        except (OSError, ValueError):
            self._stop.set()

    def _run(self) -> None:
        while True:
            self._draw()
            if self._stop.wait(self.interval):
                return

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        """Stop redrawing, draw the last figures once and clear the line for the report."""
        self._stop.set()
        self._thread.join(2)
        self._draw()
        try:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        except (OSError, ValueError):
            pass


@contextmanager
def shown(quiet: bool, stream: TextIO | None = None) -> Iterator[Watch | None]:
    """Given --quiet, yield the wrapper that feeds a progress line on STREAM (default stderr),
    or None when the line is not wanted: --quiet, or STREAM is not a terminal (cron, a pipe)."""
    out = stream if stream is not None else sys.stderr
    try:
        tty = out.isatty()
    except (OSError, ValueError):
        tty = False
    if quiet or not tty:
        yield None
        return
    progress = Progress(out)
    progress.start()
    try:
        yield progress.wrap
    finally:
        progress.stop()

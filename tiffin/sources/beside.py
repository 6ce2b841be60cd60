"""Work run in a thread beside the dump (row counts), so that it does not delay its start."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from tiffin.errors import TiffinError

T = TypeVar("T")

COUNTS_LOST = "the row counts drill checks against could not be taken (it will check tables only)"


class Beside(Generic[T]):
    """Runs WORK in a daemon thread from construction on. join() waits for it and returns
    (its value, None), or (None, one sentence) if it raised a TiffinError or OSError.
    A child process it started is killed by process.kill_all() like any other."""

    def __init__(self, work: Callable[[], T], name: str) -> None:
        self._value: T | None = None
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._value = work()
        except (TiffinError, OSError) as exc:
            self._error = str(exc)

    def join(self) -> tuple[T | None, str | None]:
        self._thread.join()
        return self._value, self._error


def counted_rows(
    counting: Beside[dict[str, dict[str, int]]] | None, late: list[str]
) -> dict[str, Any]:
    """Given the row counting started beside a dump (or None if it never started), wait for
    it and return {"rows": {db: {table: rows}}}, or {} with a warning appended to LATE if the
    counts could not be taken."""
    if counting is None:
        return {}
    counts, error = counting.join()
    if error is not None:
        late.append(f"{COUNTS_LOST}: {error}")
        return {}
    return {"rows": counts}

"""The parts of a streamed S3 upload: how big each is, reading one, and how many may be in
flight at once (bounded memory whatever the stream's size)."""

from __future__ import annotations

import threading

from tiffin.engine.streams import BLOCK, Reader

MiB = 1 << 20
MIN_PART = 5 * MiB


MAX_PART = 5 << 30


FIRST_PART = 8 * MiB


PART_CAP = 1 << 30


PARTS_PER_STEP = 700


MAX_PARTS = 10_000


IN_FLIGHT_PARTS = 4


IN_FLIGHT_BYTES = 256 * MiB


PART_ATTEMPTS = 3


def part_size(number: int, first: int = FIRST_PART, per_step: int = PARTS_PER_STEP) -> int:
    """Given a part's 1-based number, return its size: FIRST doubled every PER_STEP parts,
    never above max(FIRST, PART_CAP)."""
    cap = max(first, PART_CAP)
    step = (number - 1) // per_step
    return cap if step >= 40 else min(first << step, cap)


def read_part(reader: Reader, size: int) -> bytearray:
    """Read up to SIZE bytes from READER into one buffer; fewer only at EOF."""
    buf = bytearray(size)
    pos = 0
    with memoryview(buf) as view:
        while pos < size:
            data = reader.read(min(BLOCK, size - pos))
            if not data:
                break
            view[pos : pos + len(data)] = data
            pos += len(data)
    del buf[pos:]
    return buf


class _Window:
    """Counts the parts and bytes held in memory; admits one more part while both stay under
    their limits, and always admits a part when none is held."""

    def __init__(self, parts: int, nbytes: int) -> None:
        self._parts, self._bytes = parts, nbytes
        self._held, self._used = 0, 0
        self._cond = threading.Condition()

    def acquire(self, size: int, failed: threading.Event) -> None:
        with self._cond:
            while (
                not failed.is_set()
                and self._held
                and (self._held >= self._parts or self._used + size > self._bytes)
            ):
                self._cond.wait(0.5)
            self._held += 1
            self._used += size

    def release(self, size: int) -> None:
        with self._cond:
            self._held -= 1
            self._used -= size
            self._cond.notify_all()

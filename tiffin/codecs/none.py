"""No compression: the plain dump."""

from __future__ import annotations

from typing import IO


class NoCodec:
    name = "none"
    suffix = ""

    def __init__(self, level: int | None = None, threads: int = 0) -> None:
        pass

    def encode(self, reader: IO[bytes]) -> IO[bytes]:
        return reader

    def decode(self, reader: IO[bytes]) -> IO[bytes]:
        return reader

"""No compression: the plain dump."""

from __future__ import annotations

from tiffin.engine.streams import Reader


class NoCodec:
    name = "none"
    suffix = ""

    def __init__(self, level: int | None = None, threads: int = 0) -> None:
        pass

    def encode(self, reader: Reader) -> Reader:
        return reader

    def decode(self, reader: Reader) -> Reader:
        return reader

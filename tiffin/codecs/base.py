"""A Codec turns a reader of plain bytes into a reader of encoded bytes, and back."""

from __future__ import annotations

from typing import Protocol

from tiffin.engine.streams import Reader


class Codec(Protocol):
    """One stage of the stream: compression or encryption.

    encode(reader) returns a reader whose bytes are READER's, encoded; it reads READER lazily,
    a bounded amount at a time, and lets any exception READER raises propagate (a failed dump
    must never encode to a valid-looking end of stream). Closing it closes READER.
    decode(reader) is the inverse; it raises BackupFailed if the bytes are not a valid,
    complete stream of this codec (a truncated stream is an error, not an EOF).
    """

    name: str
    suffix: str

    def encode(self, reader: Reader) -> Reader: ...

    def decode(self, reader: Reader) -> Reader: ...

"""zstd, multi-threaded, readable by plain `zstd -d`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import zstandard

from tiffin.errors import IntegrityError
from tiffin.streams import BLOCK, IterReader, buffered


class ZstdCodec:
    name = "zstd"
    suffix = ".zst"

    def __init__(self, level: int | None = None, threads: int = 0) -> None:
        self.level = 3 if level is None else level
        self.threads = threads if threads > 0 else -1

    def encode(self, reader: IO[bytes]) -> IO[bytes]:
        cctx = zstandard.ZstdCompressor(level=self.level, threads=self.threads)

        def chunks() -> Iterator[bytes]:
            yield from cctx.read_to_iter(reader, read_size=BLOCK, write_size=BLOCK)

        return buffered(IterReader(chunks(), on_close=reader.close))

    def decode(self, reader: IO[bytes]) -> IO[bytes]:
        return buffered(IterReader(unzstd_chunks(reader), on_close=reader.close))


def unzstd_chunks(reader: IO[bytes]) -> Iterator[bytes]:
    """Yield the plain bytes of a zstd stream of one or more frames. Raise IntegrityError if it
    is corrupt or ends early."""
    dctx = zstandard.ZstdDecompressor()
    d = dctx.decompressobj()
    pending = False
    while True:
        data = reader.read(BLOCK)
        if not data:
            break
        while data:
            pending = True
            try:
                out = d.decompress(data)
            except zstandard.ZstdError as exc:
                raise IntegrityError(f"the zstd stream is corrupt ({exc})") from None
            if out:
                yield out
            if d.eof:
                pending = False
                data = d.unused_data
                d = dctx.decompressobj()
            else:
                data = b""
    if pending:
        raise IntegrityError("the zstd stream ends early (truncated)")

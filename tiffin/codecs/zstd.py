"""zstd, multi-threaded, readable by plain `zstd -d`.

The jobs handed to zstd's worker threads are JOB_SIZE bytes: as it comes, python-zstandard
sizes them from the window (8 MiB at level 3, more above) and keeps several jobs of input and
output per worker, 86 MB on a directory's data; 2 MiB jobs need 40 MB for the same speed and
ratio. The window is left as the level sets it, so `zstd -d` needs no --long flag."""

from __future__ import annotations

from collections.abc import Iterator

from tiffin.engine.streams import BLOCK, IterReader, Reader, buffered
from tiffin.errors import IntegrityError

JOB_SIZE = 2 << 20
FEED = 32 << 10  # compressed bytes handed to the decoder at a time: see unzstd_chunks


class ZstdCodec:
    name = "zstd"
    suffix = ".zst"

    def __init__(self, level: int | None = None, threads: int = 0) -> None:
        self.level = 3 if level is None else level
        self.threads = threads if threads > 0 else -1

    def encode(self, reader: Reader) -> Reader:
        import zstandard  # loaded when used: a gzip or plain run does not pay its start-up

        if self.threads == 1:
            cctx = zstandard.ZstdCompressor(level=self.level)
        else:
            params = zstandard.ZstdCompressionParameters.from_level(
                self.level, threads=self.threads, job_size=JOB_SIZE
            )
            cctx = zstandard.ZstdCompressor(compression_params=params)

        def chunks() -> Iterator[bytes]:
            # zstandard reads any object with read(); its stubs name only IO[bytes].
            yield from cctx.read_to_iter(reader, read_size=BLOCK, write_size=BLOCK)  # type: ignore[arg-type]

        return buffered(IterReader(chunks(), on_close=reader.close))

    def decode(self, reader: Reader) -> Reader:
        return buffered(IterReader(unzstd_chunks(reader), on_close=reader.close))


def unzstd_chunks(reader: Reader) -> Iterator[bytes]:
    """Yield the plain bytes of a zstd stream of one or more frames. Raise IntegrityError if it
    is corrupt or ends early."""
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    d = dctx.decompressobj()
    pending = False
    while True:
        data = reader.read(BLOCK)
        if not data:
            break
        view = memoryview(data)
        while view:
            pending = True
            try:
                # A slice at a time: the output of a whole block (~10x its size) would be
                # one fresh allocation, page-faulted in and given back, at every block.
                out = d.decompress(view[:FEED])
            except zstandard.ZstdError as exc:
                raise IntegrityError(f"the zstd stream is corrupt ({exc})") from None
            if out:
                yield out
            if d.eof:
                pending = False
                view = memoryview(d.unused_data + bytes(view[FEED:]))
                d = dctx.decompressobj()
            else:
                view = view[FEED:]
    if pending:
        raise IntegrityError("the zstd stream ends early (truncated)")

"""The bytes of one archived WAL file (see tiffin/engine/archive.py): a zstd stream of a
skippable header frame, one zstd frame of the file, and a skippable sha256 frame. Encoding
reads the file once; decoding checks name, size and sha256 before it says a byte was good."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime

from tiffin.engine.streams import Reader
from tiffin.errors import IntegrityError

LEVEL = 3  # zstd's default, as pgBackRest's compress-type=zst
BLOCK = 1 << 20
WHOLE = 16 << 20  # files up to this size are compressed in one call (PushStream)
SKIPPABLE = 0x184D2A5E  # one of zstd's sixteen skippable-frame magic numbers
HEAD_MAGIC = b"tiffin-wal 1 "
SHA_MAGIC = b"sha256 "
HEAD_MAX = 4096  # a header longer than this is not one tiffin wrote
FRAME = struct.Struct("<II")


TAIL = FRAME.size + len(SHA_MAGIC) + 64


@dataclass(frozen=True)
class Meta:
    """What the header of an archived file says: its WAL name, size, and when it was pushed
    (Unix seconds), from which host, by which tiffin."""

    name: str
    size: int
    pushed: float
    host: str = ""
    tool: str = ""


def frame(payload: bytes) -> bytes:
    return FRAME.pack(SKIPPABLE, len(payload)) + payload


def header(meta: Meta) -> bytes:
    stamp = datetime.fromtimestamp(meta.pushed, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = {
        "name": meta.name,
        "size": meta.size,
        "pushed": meta.pushed,
        "pushed_utc": stamp,
        "host": meta.host,
        "tool": meta.tool,
    }
    return frame(HEAD_MAGIC + json.dumps(body, separators=(",", ":")).encode())


_local = threading.local()


def _buffer() -> memoryview:
    """Return this thread's buffer of WHOLE + 1 bytes (one past a file, to see it grew), made
    on its first use and kept: a helper's threads push one segment after another."""
    buf: memoryview | None = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = memoryview(bytearray(WHOLE + 1))
    return buf


def _read_into(fd: int, buf: memoryview) -> int:
    """Fill BUF from FD as far as the file goes; return how many bytes there were."""
    got = 0
    while got < len(buf):
        n = os.readv(fd, [buf[got:]])
        if not n:
            break
        got += n
    return got


class PushStream:
    """A reader of the object to store for the open file FD of SIZE bytes: header, zstd frame,
    checksum. It raises IntegrityError instead of its last bytes if the file did not hold
    SIZE bytes (it changed while read), so that the target publishes nothing. `sent` is the
    sha256 of the object's bytes as handed out."""

    def __init__(self, fd: int, meta: Meta) -> None:
        self._fd, self._meta = fd, meta
        self._chunks = self._generate()
        self._buf = b""
        self.sent = hashlib.sha256()

    def _generate(self) -> Generator[bytes, None, None]:
        yield header(self._meta)
        import zstandard  # on first use: a backup that never meets the WAL archive skips it

        plain = hashlib.sha256()
        compressor = zstandard.ZstdCompressor(level=LEVEL)
        size = self._meta.size
        if size <= WHOLE:
            # A segment of PostgreSQL's default size: read whole into this thread's buffer
            # and compressed in one call, a fifth less CPU than a stream of blocks.
            view = _buffer()[: size + 1]
            count = _read_into(self._fd, view)  # SIZE + 1 bytes: it grew
            self._check(count)
            plain.update(view[:size])
            yield compressor.compress(view[:size])
        else:
            comp = compressor.compressobj(size=size)
            count = 0
            while data := os.read(self._fd, BLOCK):
                count += len(data)
                if count > size:
                    break  # it grew: refused before zstd sees more than it was told
                plain.update(data)
                if out := comp.compress(data):
                    yield out
            self._check(count)
            yield comp.flush()
        yield frame(SHA_MAGIC + plain.hexdigest().encode())

    def _check(self, count: int) -> None:
        size = self._meta.size
        if count != size:
            found = f"{count} bytes" if count < size else "more bytes"
            raise IntegrityError(
                f"{self._meta.name} changed while it was read ({found}, {size} expected)"
            )

    def read(self, size: int = -1, /) -> bytes:
        while not self._buf or (size < 0 or len(self._buf) < size):
            nxt = next(self._chunks, None)
            if nxt is None:
                break
            self._buf += nxt
            if size >= 0 and len(self._buf) >= size:
                break
        if size < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:size], self._buf[size:]
        self.sent.update(out)
        return out

    def close(self) -> None:
        self._chunks.close()


class Exact:
    """A reader whose read_exact(N) returns N bytes or raises IntegrityError."""

    def __init__(self, reader: Reader, name: str) -> None:
        self.reader, self.name = reader, name

    def read(self, size: int) -> bytes:
        return self.reader.read(size)

    def read_exact(self, size: int) -> bytes:
        got = b""
        while len(got) < size:
            data = self.reader.read(size - len(got))
            if not data:
                raise IntegrityError(f"the archive's {self.name} ends early (truncated)")
            got += data
        return got


def read_header(src: Exact, name: str) -> Meta:
    magic, length = FRAME.unpack(src.read_exact(FRAME.size))
    if magic != SKIPPABLE or length > HEAD_MAX:
        raise IntegrityError(f"the archive's {name} is not a file tiffin archived")
    payload = src.read_exact(length)
    try:
        if not payload.startswith(HEAD_MAGIC):
            raise ValueError
        body = json.loads(payload[len(HEAD_MAGIC) :])
        meta = Meta(
            str(body["name"]),
            int(body["size"]),
            float(body["pushed"]),
            str(body.get("host", "")),
            str(body.get("tool", "")),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        raise IntegrityError(f"the archive's {name} has a malformed header") from None
    if meta.name != name or meta.size < 0:
        raise IntegrityError(f"the archive's {name} says it is {meta.name!r}: it was planted")
    return meta


def decode(src: Exact, name: str, write: Callable[[bytes], object]) -> tuple[Meta, str]:
    """Given a reader of an archived object and the WAL name it must be, hand the file's
    bytes to WRITE in order and return its header and sha256 once size and sha256 match.
    Raise IntegrityError if anything does not (WRITE may have had bytes by then)."""
    import zstandard  # on first use (see PushStream)

    meta = read_header(src, name)
    d = zstandard.ZstdDecompressor().decompressobj()
    plain, count, tail = hashlib.sha256(), 0, b""
    while data := src.read(BLOCK):
        if d.eof:
            tail += data
        else:
            try:
                out = d.decompress(data)
            except zstandard.ZstdError as exc:
                raise IntegrityError(f"the archive's {name} is corrupt ({exc})") from None
            count += len(out)
            if count > meta.size:
                raise IntegrityError(f"the archive's {name} holds more than {meta.size} bytes")
            if out:
                plain.update(out)
                write(out)
            if d.eof:
                tail += d.unused_data
        if len(tail) > TAIL:
            raise IntegrityError(f"the archive's {name} has bytes after its end")
    if not d.eof or len(tail) != TAIL:
        raise IntegrityError(f"the archive's {name} ends early (truncated)")
    magic, length = FRAME.unpack(tail[: FRAME.size])
    sha = tail[FRAME.size + len(SHA_MAGIC) :].decode("ascii", "replace")
    body = tail[FRAME.size :]
    if magic != SKIPPABLE or length != TAIL - FRAME.size or not body.startswith(SHA_MAGIC):
        raise IntegrityError(f"the archive's {name} has a malformed checksum")
    if count != meta.size or plain.hexdigest() != sha:
        raise IntegrityError(f"the archive's {name} does not match its sha256: it is damaged")
    return meta, sha

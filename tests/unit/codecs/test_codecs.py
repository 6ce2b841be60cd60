"""Codecs: parallel gzip is one stream plain gunzip reads; age round-trips and fails clearly."""

from __future__ import annotations

import gzip
import io
import os
import random
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pyrage
import pytest

import tiffin.codecs.gzip as gzip_module
from tiffin.codecs.age import AgeCodec, check_recipients
from tiffin.codecs.gzip import (
    OUT_LIMIT,
    GzipCodec,
    block_size,
    gunzip_chunks,
    parallel_gzip,
)
from tiffin.engine.streams import IterReader, Prefetch, buffered
from tiffin.errors import IntegrityError, UsageError

SMALL = 64 << 10  # a small block, so that many blocks stay quick to test


def text_corpus(size: int, seed: int = 7) -> bytes:
    """Deterministic dump-like text: SQL inserts, tab-separated rows and JSON."""
    r = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "tiffin", "ramen", "NULL", "2011-02-10"]
    out: list[str] = []
    n = 0
    total = 0
    while total < size:
        n += 1
        if n % 3:
            line = f"{n}\t{r.randint(1, 99)}\t{r.randint(-5000, 5000)}\t{r.choice(words)}\n"
        else:
            tags = ",".join(f'"{r.choice(words)}"' for _ in range(3))
            line = f"INSERT INTO t VALUES ({n},'{r.choice(words)}',{r.random():.6f},'[{tags}]');\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode()[:size]


def compressed(data: bytes, threads: int = 2, block: int = SMALL, level: int = 6) -> bytes:
    return b"".join(parallel_gzip(io.BytesIO(data), level, threads, block))


def gunzip_cli(data: bytes) -> bytes:
    return subprocess.run(["gzip", "-dc"], input=data, capture_output=True, check=True).stdout


def decoded(data: bytes) -> bytes:
    return b"".join(gunzip_chunks(io.BytesIO(data)))


SIZES = [0, 1, SMALL - 1, SMALL, SMALL + 1, 2 * SMALL, 5 * SMALL + 17]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["random", "repetitive"])
def test_parallel_gzip_is_one_stream_gunzip_and_python_read(size: int, kind: str) -> None:
    data = os.urandom(size) if kind == "random" else text_corpus(size)
    out = compressed(data, threads=3)
    assert gunzip_cli(out) == data
    assert gzip.decompress(out) == data
    assert decoded(out) == data
    d = zlib.decompressobj(31)
    assert d.decompress(out) == data and d.eof and not d.unused_data  # a single member


@pytest.mark.parametrize("level", [0, 1, 9])
def test_every_level_gives_a_valid_stream(level: int) -> None:
    data = os.urandom(100_000) + text_corpus(3 * SMALL)
    assert gunzip_cli(compressed(data, level=level)) == data


def test_gzip_codec_uses_all_cores_by_default_and_one_thread_is_plain_zlib() -> None:
    data = text_corpus(3 << 20)
    assert GzipCodec().threads == (os.cpu_count() or 1)
    for threads in (1, 2):
        codec = GzipCodec(threads=threads)
        out = codec.encode(io.BufferedReader(io.BytesIO(data))).read()
        assert gunzip_cli(out) == data
        assert codec.decode(io.BufferedReader(io.BytesIO(out))).read() == data


def test_parallel_ratio_is_within_2_percent_of_single_stream_level_6() -> None:
    data = text_corpus(8 << 20)
    deflate = gzip_module.zlib  # the deflate the codec uses: zlib-ng's
    comp = deflate.compressobj(6, deflate.DEFLATED, 31)
    single = len(comp.compress(data) + comp.flush())
    parallel = len(b"".join(parallel_gzip(io.BytesIO(data), 6, 2)))  # the default 1 MiB block
    assert parallel <= single * 1.02
    # Even small blocks keep the ratio: each is primed with the 32 KiB before it.
    assert len(compressed(data, block=SMALL)) <= single * 1.02
    # zlib-ng's level 6 against gzip's (zlib): a few percent at most on text.
    assert parallel <= len(gzip.compress(data, 6)) * 1.05


@pytest.mark.parametrize("cut", [1, 9, 10, 100, -9, -8, -4, -1])
def test_truncated_gzip_is_an_error_not_a_short_stream(cut: int) -> None:
    out = compressed(text_corpus(3 * SMALL))
    with pytest.raises(IntegrityError):
        decoded(out[:cut])


def test_empty_and_corrupt_gzip_are_errors() -> None:
    with pytest.raises(IntegrityError, match="empty"):
        decoded(b"")
    out = bytearray(compressed(text_corpus(3 * SMALL)))
    out[len(out) // 2] ^= 0xFF
    with pytest.raises(IntegrityError):
        decoded(bytes(out))
    with pytest.raises(IntegrityError):
        decoded(compressed(b"abc") + b"\0\0\0")


def test_members_concatenated_decode_as_one_stream() -> None:
    assert decoded(compressed(b"first ") + gzip.compress(b"second")) == b"first second"


def test_decoding_a_bomb_yields_bounded_chunks() -> None:
    bomb = gzip.compress(bytes(64 << 20), 9)
    sizes = [len(c) for c in gunzip_chunks(io.BytesIO(bomb))]
    assert sum(sizes) == 64 << 20 and max(sizes) <= OUT_LIMIT


class Failing(io.RawIOBase):
    """Yields LIMIT bytes of text, then raises."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.left <= 0:
            raise OSError("the dump broke")
        n = min(len(b), self.left)
        b[:n] = b"x" * n
        self.left -= n
        return n


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("limit", [0, 5, 3 << 20])
def test_a_failing_input_raises_and_never_ends_the_gzip_stream(threads: int, limit: int) -> None:
    out = GzipCodec(threads=threads).encode(io.BufferedReader(Failing(limit)))
    got = bytearray()
    with pytest.raises(OSError, match="the dump broke"):
        while data := out.read(1 << 16):
            got += data
    with pytest.raises(IntegrityError):
        decoded(bytes(got))


# ---------------------------------------------------------------- age


@pytest.fixture(scope="module")
def age_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    identity = pyrage.x25519.Identity.generate()
    path = tmp_path_factory.mktemp("age") / "key.txt"
    path.write_text(f"# created: for a test\n{identity}\n")
    return str(identity.to_public()), path


def chunks_of(codec_out: io.BufferedReader | object) -> Iterator[bytes]:
    assert isinstance(codec_out, io.BufferedIOBase)
    while data := codec_out.read(1 << 20):
        yield data


@pytest.mark.parametrize("size", [0, 1, 65536, 3 << 20])
def test_age_round_trip_is_age_format(age_key: tuple[str, Path], size: int) -> None:
    recipient, key = age_key
    data = os.urandom(size)
    enc = b"".join(chunks_of(AgeCodec(recipients=[recipient]).encode(io.BytesIO(data))))
    assert enc.startswith(b"age-encryption.org/v1\n")
    identity = pyrage.x25519.Identity.from_str(key.read_text().split()[-1])
    assert pyrage.decrypt(enc, [identity]) == data  # the reference implementation reads it
    dec = AgeCodec(identity_file=str(key)).decode(io.BufferedReader(io.BytesIO(enc)))
    assert b"".join(chunks_of(dec)) == data


def test_age_ssh_recipient_and_ssh_private_key(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub = (tmp_path / "id_ed25519.pub").read_text().strip()
    assert check_recipients([pub + "\n"]) == (pub,)
    enc = AgeCodec(recipients=[pub]).encode(io.BytesIO(b"secret dump")).read()
    assert AgeCodec(identity_file=str(key)).decode(io.BytesIO(enc)).read() == b"secret dump"


@pytest.mark.parametrize("bad", ["age1bogus", "ssh-dss AAAAB3Nz", "hello", "ssh-ed25519 AAAA"])
def test_a_bad_recipient_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="--encrypt-to"):
        check_recipients([bad])


def test_a_bad_identity_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        AgeCodec(identity_file=str(tmp_path / "missing"))
    junk = tmp_path / "junk"
    junk.write_text("# nothing here\nnot a key\n")
    with pytest.raises(UsageError, match="line 2"):
        AgeCodec(identity_file=str(junk))


def test_age_wrong_identity_and_corruption_are_integrity_errors(
    age_key: tuple[str, Path], tmp_path: Path
) -> None:
    recipient, key = age_key
    enc = AgeCodec(recipients=[recipient]).encode(io.BytesIO(os.urandom(200_000))).read()
    other = tmp_path / "other.txt"
    other.write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    with pytest.raises(IntegrityError, match="not one of the recipients"):
        AgeCodec(identity_file=str(other)).decode(io.BytesIO(enc)).read()
    codec = AgeCodec(identity_file=str(key))
    for broken in (enc[:-1], enc[: len(enc) // 2], enc[:-16], enc[:100]):
        with pytest.raises(IntegrityError):
            codec.decode(io.BytesIO(broken)).read()
    flipped = bytearray(enc)
    flipped[-1000] ^= 1
    with pytest.raises(IntegrityError, match="corrupt"):
        codec.decode(io.BytesIO(bytes(flipped))).read()


def test_age_passes_the_input_error_through_unchanged(age_key: tuple[str, Path]) -> None:
    out = AgeCodec(recipients=[age_key[0]]).encode(io.BufferedReader(Failing(3 << 20)))
    with pytest.raises(OSError, match="the dump broke"):
        while out.read(1 << 16):
            pass


def test_age_stream_stays_bounded(age_key: tuple[str, Path]) -> None:
    """The encrypting thread runs at most a few blocks ahead of its reader."""

    class Counting(io.RawIOBase):
        def __init__(self) -> None:
            super().__init__()
            self.read_bytes = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
            self.read_bytes += len(b)
            b[:] = bytes(len(b))
            return len(b)

    src = Counting()
    out = AgeCodec(recipients=[age_key[0]]).encode(io.BufferedReader(src))
    assert out.read(1 << 20)
    time.sleep(0.5)
    assert src.read_bytes < 16 << 20
    out.close()


@pytest.mark.parametrize("codec", [GzipCodec(threads=2), GzipCodec(threads=1)])
def test_closing_a_pipeline_whose_dump_stalls_does_not_hang(codec: GzipCodec) -> None:
    """A failing target closes the stages while the dump is stuck (on a lock, say)."""
    stalled = threading.Event()

    def dump() -> Iterator[bytes]:
        yield os.urandom(1 << 20)
        stalled.wait(30)
        yield b"late"

    stream = buffered(Prefetch(buffered(IterReader(dump()))))
    stream = buffered(Prefetch(codec.encode(stream)))
    time.sleep(0.3)
    t0 = time.monotonic()
    stream.close()
    assert time.monotonic() - t0 < 3
    stalled.set()


def test_many_cores_get_smaller_blocks_so_memory_stays_bounded() -> None:
    assert block_size(2) == 1 << 20
    assert block_size(64) * (64 + 2) <= 32 << 20 and block_size(1000) == 128 << 10
    data = text_corpus(2 << 20)
    assert gunzip_cli(b"".join(parallel_gzip(io.BytesIO(data), 6, 40))) == data

"""Codecs by name: an explicit registry. A codec's module (and its library: zlib-ng,
zstandard) is imported when a codec of that name is made, as the targets' are, so a run with
`--compress none` loads neither."""

from __future__ import annotations

from collections.abc import Callable

from tiffin.codecs.base import Codec

Made = Callable[[int | None, int], Codec]  # (level, threads) -> the codec


def _gzip() -> Made:
    from tiffin.codecs.gzip import GzipCodec

    return GzipCodec


def _zstd() -> Made:
    from tiffin.codecs.zstd import ZstdCodec

    return ZstdCodec


def _none() -> Made:
    from tiffin.codecs.none import NoCodec

    return NoCodec


COMPRESSORS: dict[str, Callable[[], Made]] = {"gzip": _gzip, "zstd": _zstd, "none": _none}


def compressor(name: str, level: int | None = None, threads: int = 0) -> Codec:
    """Given a name of COMPRESSORS, a level and a thread count, return the codec."""
    return COMPRESSORS[name]()(level, threads)


__all__ = ["COMPRESSORS", "Codec", "compressor"]

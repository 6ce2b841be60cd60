"""Codecs by name: an explicit registry."""

from __future__ import annotations

from tiffin.codecs.base import Codec
from tiffin.codecs.gzip import GzipCodec
from tiffin.codecs.none import NoCodec
from tiffin.codecs.zstd import ZstdCodec

COMPRESSORS: dict[str, type[GzipCodec] | type[ZstdCodec] | type[NoCodec]] = {
    "gzip": GzipCodec,
    "zstd": ZstdCodec,
    "none": NoCodec,
}


def compressor(name: str, level: int | None = None, threads: int = 0) -> Codec:
    return COMPRESSORS[name](level, threads)


__all__ = ["COMPRESSORS", "Codec", "compressor"]

"""The read path of a stored backup: fetch its bytes, check their sha256, decrypt, decode."""

from __future__ import annotations

import io
from typing import IO

from tiffin.catalog.manifest import Manifest
from tiffin.catalog.naming import parse_name
from tiffin.codecs import Codec, compressor
from tiffin.engine.streams import BLOCK, HashingReader
from tiffin.errors import (
    IntegrityError,
    UsageError,
)
from tiffin.targets import Target


def check_stored(reader: HashingReader, manifest: Manifest | None, name: str) -> None:
    """Raise IntegrityError unless READER's bytes (read to EOF) match MANIFEST."""
    if manifest is None:
        return
    if reader.size != manifest.size:
        raise IntegrityError(f"{name} holds {reader.size} bytes, its manifest says {manifest.size}")
    if reader.sha256 != manifest.sha256:
        raise IntegrityError(f"the sha256 of {name} does not match its manifest")


def decoders_for(name: str, identity: str | None) -> list[Codec]:
    """Given a backup name and an age identity file, return the decoding stages in order."""
    parsed = parse_name(name)
    stages: list[Codec] = []
    if parsed is None:
        raise UsageError(f"{name} is not a tiffin backup name")
    if parsed.encrypted:
        if not identity:
            raise UsageError(f"{name} is encrypted: give the age identity with --identity FILE")
        from tiffin.codecs.age import AgeCodec

        stages.append(AgeCodec(identity_file=identity))
    stages.append(compressor(parsed.compression))
    return stages


def decoded(
    target: Target, name: str, manifest: Manifest | None, identity: str | None
) -> tuple[HashingReader, IO[bytes]]:
    raw = HashingReader(target.open(name))
    stream: IO[bytes] = io.BufferedReader(raw, buffer_size=BLOCK)
    for codec in decoders_for(name, identity):
        stream = codec.decode(stream)
    return raw, stream


def verify_stored(target: Target, name: str, manifest: Manifest) -> None:
    """Read NAME's stored bytes to the end; raise IntegrityError unless they match MANIFEST."""
    raw = HashingReader(target.open(name))
    try:
        while raw.read(BLOCK):
            pass
    finally:
        raw.close()
    check_stored(raw, manifest, name)

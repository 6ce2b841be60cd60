"""The read path of a stored backup: fetch its bytes, check their sha256, decrypt, decode."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tiffin.catalog.manifest import Manifest, Part
from tiffin.catalog.naming import parse_name
from tiffin.codecs import Codec, compressor
from tiffin.engine.streams import BLOCK, HashingReader, Reader
from tiffin.errors import (
    IntegrityError,
    UsageError,
)
from tiffin.targets import Target

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


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


def read_path(stored: Reader, stages: Iterable[Codec]) -> tuple[HashingReader, Reader, Reader]:
    """The one read path of a stored backup, for restore, verify and drill. Given a reader of
    its stored bytes and its decoding stages in order (decoders_for), return the reader that
    counts and hashes the stored bytes (give it to check_stored once they are read to the
    end), the buffered reader of the stored bytes (closing it closes STORED), and the reader
    of the decoded bytes."""
    raw = HashingReader(stored)
    buffered: Reader = io.BufferedReader(raw, buffer_size=BLOCK)
    plain = buffered
    for codec in stages:
        plain = codec.decode(plain)
    return raw, buffered, plain


def decoded(
    target: Target, name: str, manifest: Manifest | None, identity: str | None
) -> tuple[HashingReader, Reader]:
    """Given a target, a backup NAME (its manifest) and an age identity, open NAME and return
    the hashing reader of its stored bytes and the reader of its decoded bytes."""
    raw, _, plain = read_path(target.open(name), decoders_for(name, identity))
    return raw, plain


def verify_stored(target: Target, name: str, manifest: Manifest) -> None:
    """Read NAME's stored bytes to the end; raise IntegrityError unless they match MANIFEST."""
    raw, stored, _ = read_path(target.open(name), ())
    try:
        while stored.read(BLOCK):
            pass
    finally:
        stored.close()
    check_stored(raw, manifest, name)


class PartsCheck(io.RawIOBase):
    """Passes INNER's bytes through, hashing them part by part as the manifest's PARTS cut
    them, so that the first chunk whose bytes differ can be named."""

    def __init__(self, inner: Reader, parts: tuple[Part, ...]) -> None:
        super().__init__()
        self.inner, self.parts = inner, parts
        self._sha = [hashlib.sha256() for _ in parts]
        self._got = [0] * len(parts)
        self._index, self.extra = 0, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        out = memoryview(b)
        data = self.inner.read(len(out))
        n = len(data)
        out[:n] = data
        view = memoryview(data)
        while view:
            i = self._index
            if i >= len(self.parts):
                self.extra += len(view)
                break
            take = view[: self.parts[i].size - self._got[i]]
            self._sha[i].update(take)
            self._got[i] += len(take)
            view = view[len(take) :]
            if self._got[i] == self.parts[i].size:
                self._index += 1
        return n

    def problem(self) -> str:
        """Return what is wrong with the first damaged chunk, or ''."""
        for part, sha, got in zip(self.parts, self._sha, self._got, strict=True):
            if got < part.size:
                return f"the chunk {part.name} is short or missing"
            if sha.hexdigest() != part.sha256:
                return f"the chunk {part.name} does not match its manifest"
        if self.extra:
            return f"{self.extra} bytes follow the last chunk of the manifest"
        return ""

    def close(self) -> None:
        self.inner.close()
        super().close()

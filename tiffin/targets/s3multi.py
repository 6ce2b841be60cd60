"""The seed's s3multi layout: a backup NAME stored as numbered chunks whose `cat` is the backup.

    s3://BUCKET/PREFIX/NAME/NAME.00, NAME.01, ...   each --chunk-size bytes, the last shorter
    s3://BUCKET/PREFIX/NAME.manifest.json           a plain object, written by the pipeline

Each chunk is streamed by S3Store.upload (multipart, growing parts) and hashed on the way, so
put() returns every chunk's size and sha256 for the manifest. A chunk is complete on S3 once
uploaded; the backup is complete only when its manifest is written, after every chunk.
"""

from __future__ import annotations

import io
import logging
import re
from typing import TYPE_CHECKING

from tiffin.catalog.manifest import Part
from tiffin.catalog.naming import DRILL_SUFFIX, MANIFEST_SUFFIX
from tiffin.engine.streams import BLOCK, HashingReader, Reader
from tiffin.errors import AlreadyExists, NotFound, TargetError
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets.base import Entry, Stored
from tiffin.targets.s3 import S3Store, entry

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger("tiffin")

# A chunk's key relative to the prefix: NAME/NAME.SUFFIX (see chunk_suffix).
_CHUNK = re.compile(r"^(?P<name>[^/]+)/(?P=name)\.(?P<suffix>\d{2,})$")


def chunk_suffix(index: int) -> str:
    """Given a 0-based chunk index, return its suffix as GNU `split -d` numbers its files:
    00 to 89, then 9000 to 9899, then 990000 to 998999, ... so that the shell's sorted
    `cat NAME.*` joins any number of chunks in order."""
    level, first = 0, 0
    while index - first >= 9 * 10 ** (level + 1):
        first += 9 * 10 ** (level + 1)
        level += 1
    return "9" * level + f"{index - first:0{level + 2}d}"


def chunk_index(suffix: str) -> int | None:
    """Given a chunk's suffix, return its 0-based index, or None if split would not make it."""
    level = (len(suffix) - 2) // 2
    first = sum(9 * 10 ** (k + 1) for k in range(level))
    index = first + int(suffix[level:] or 0)
    return index if chunk_suffix(index) == suffix else None


def chunk_name(name: str, index: int) -> str:
    """Given a backup name and a 0-based chunk index, return the chunk's name: NAME.00, …"""
    return f"{name}.{chunk_suffix(index)}"


def is_plain(name: str) -> bool:
    """Return whether NAME is stored as one object rather than in chunks: manifests and
    drill records are."""
    return name.endswith((MANIFEST_SUFFIX, DRILL_SUFFIX))


class _Limited(io.RawIOBase):
    """At most LIMIT bytes of INNER, starting with HEAD (bytes already read from INNER)."""

    def __init__(self, inner: Reader, limit: int, head: bytes = b"") -> None:
        super().__init__()
        self._inner, self._left, self._head = inner, limit, memoryview(head)

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        out = memoryview(b)
        want = min(len(out), self._left)
        if want <= 0:
            return 0
        if self._head:
            data: bytes | memoryview = self._head[:want]
            self._head = self._head[len(data) :]
        else:
            data = self._inner.read(want)
        n = len(data)
        out[:n] = data
        self._left -= n
        return n


class _Chain(io.RawIOBase):
    """The objects KEYS read one after another, each opened only when reached."""

    def __init__(self, store: S3Store, keys: list[str], name: str) -> None:
        super().__init__()
        self._store, self._keys, self._name = store, keys, name
        self._current: Reader | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        out = memoryview(b)
        while True:
            if self._current is None:
                if not self._keys:
                    return 0
                key = self._keys.pop(0)
                try:
                    self._current = self._store.open_key(key, self._name)
                except NotFound:
                    raise TargetError(f"{self._store.where(key)} vanished while reading") from None
            data = self._current.read(len(out))
            if data:
                out[: len(data)] = data
                return len(data)
            self._current.close()
            self._current = None

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        super().close()


class S3MultiTarget:
    """Backups as numbered chunk objects under s3://BUCKET/PREFIX/NAME/; see the module."""

    def __init__(self, url: TargetURL, options: TargetOptions, **tuning: int) -> None:
        """TUNING: first_part_size and parts_per_step of S3Store, for tests."""
        if options.chunk_size < 1:
            raise ValueError("the chunk size must be at least 1 byte")
        self.chunk_size = options.chunk_size
        self.store = S3Store(url, options, **tuning)

    def _scan(self, name: str) -> dict[int, tuple[str, int, float]]:
        """Return NAME's chunk objects by index: (key, size, mtime)."""
        s = self.store
        base = s.key("")
        found: dict[int, tuple[str, int, float]] = {}
        for page in s.pages("list_objects_v2", Prefix=s.key(name) + "/", Delimiter="/"):
            for obj in page.get("Contents", ()):
                m = _CHUNK.match(obj["Key"][len(base) :])
                index = chunk_index(m["suffix"]) if m and m["name"] == name else None
                if index is not None:
                    mtime = obj["LastModified"].timestamp()
                    found[index] = (obj["Key"], obj["Size"], mtime)
        return found

    def _chunks(self, name: str) -> list[tuple[str, int, float]]:
        """Return NAME's chunks (key, size, mtime) in order. Raise TargetError on a gap."""
        found = self._scan(name)
        chunks = [found[i] for i in sorted(found)]
        if chunks and len(found) != max(found) + 1:
            missing = min(set(range(max(found) + 1)) - set(found))
            raise TargetError(f"the chunk {chunk_name(name, missing)} of {name} is missing")
        return chunks

    def put(self, name: str, reader: Reader, replace: bool = False) -> Stored:
        s = self.store
        if is_plain(name):
            if not replace and s.head(s.key(name)) is not None:
                raise AlreadyExists(f"{s.where(s.key(name))} exists already; never overwritten")
            return Stored(s.upload(s.key(name), reader, replace))
        if replace:
            raise ValueError("only a plain object (a drill record) may be replaced")
        if self._scan(name) or s.head(s.key(name)) is not None:
            raise AlreadyExists(f"{s.where(s.key(name))} exists already; never overwritten")
        parts: list[Part] = []
        part = ""
        try:
            head = b""
            while True:
                part = chunk_name(name, len(parts))
                chunk = _Limited(reader, self.chunk_size, head)
                hashing = HashingReader(chunk)
                s.upload(s.key(f"{name}/{part}"), hashing)
                parts.append(Part(part, hashing.size, hashing.sha256))
                if hashing.size < self.chunk_size:
                    break
                head = reader.read(1)  # more to come, or did it end on a boundary?
                if not head:
                    break
        except BaseException:
            # The chunk being sent when the error struck (an interruption) may be stored too.
            for done in {*(p.name for p in parts), part} - {""}:
                s.delete(s.key(f"{name}/{done}"), quiet=True)
            raise
        return Stored(sum(p.size for p in parts), tuple(parts))

    def open(self, name: str) -> Reader:
        chunks = self._chunks(name)
        if not chunks:
            return self.store.open_key(self.store.key(name), name)
        return io.BufferedReader(_Chain(self.store, [k for k, _, _ in chunks], name), BLOCK)

    def list(self) -> list[Entry]:
        s = self.store
        base = s.key("")
        entries: list[Entry] = []
        for page in s.pages("list_objects_v2", Prefix=base, Delimiter="/"):
            for obj in page.get("Contents", ()):
                name = obj["Key"][len(base) :]
                if name:
                    entries.append(entry(name, obj["Size"], obj["LastModified"].timestamp()))
            for sub in page.get("CommonPrefixes", ()):
                name = sub["Prefix"][len(base) :].rstrip("/")
                chunked = self._chunked_entry(name)
                if chunked is not None:
                    entries.append(chunked)
        partial: dict[str, float] = {}
        for key, when, _ in s.uploads(base):
            rel = key[len(base) :]
            m = _CHUNK.match(rel)
            name = m["name"] if m else rel
            if name and "/" not in name:
                partial[name] = max(when, partial.get(name, when))
        entries.extend(Entry(n, 0, t, partial=True) for n, t in partial.items())
        return entries

    def _chunked_entry(self, name: str) -> Entry | None:
        try:
            chunks = self._chunks(name)
        except TargetError as exc:
            log.warning("%s", exc)  # listed, but as the leftover it is
            return Entry(name, 0, None, partial=True)
        if not chunks:
            return None
        return entry(name, sum(c[1] for c in chunks), max(c[2] for c in chunks))

    def stat(self, name: str) -> Entry | None:
        s = self.store
        if not is_plain(name):
            entry = self._chunked_entry(name)
            if entry is not None:
                return entry
        return s.head(s.key(name), name)

    def remove(self, name: str) -> None:
        s = self.store
        for key, _, _ in self._scan(name).values():
            s.delete(key)
        s.delete(s.key(name))
        s.abort_uploads(s.key(name), exact=True)
        s.abort_uploads(s.key(name) + "/", exact=False)

    def close(self) -> None:
        self.store.close()

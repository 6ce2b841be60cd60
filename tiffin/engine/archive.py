"""The WAL archive on any target: PATH/LABEL.wal/<walfile>.zst, one object per archived file.

Each object is a valid zstd stream (`zstd -d` gives the file back) made of three frames:
  1. a skippable frame holding "tiffin-wal 1 " + JSON: the file's name, size, push time
     (Unix seconds and ISO 8601 UTC), the pushing host and tiffin's version;
  2. one zstd frame of the file's bytes;
  3. a skippable frame holding "sha256 " + the hex sha256 of the file's bytes.
The header comes first so that a reader learns when a file was pushed from its first bytes;
the checksum comes last so that a push reads the file once. A reader checks name, size and
sha256 before it hands out a single byte as good (fetch writes a temp file and renames it only
then). A push publishes through the target's put(): temp name, size check, publish without
overwrite; it then reads the stored object back and compares its sha256 with what it sent.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from tiffin import __version__
from tiffin.catalog import walnames
from tiffin.engine import walformat
from tiffin.engine.walformat import BLOCK, Meta
from tiffin.errors import AlreadyExists, IntegrityError, NotFound, TargetError
from tiffin.job import TargetURL
from tiffin.targets.base import Target

SUFFIX = ".zst"
FOLDER_SUFFIX = ".wal"


class WalConflict(TargetError):
    """The archive holds other bytes under this file's name."""


class WalMissing(NotFound):
    """The archive holds no file of that name."""


@dataclass(frozen=True)
class Archived:
    """One archived file as the target lists it: its WAL name, its stored (compressed) size
    and the target's modification time (Unix seconds; None where the target gives none)."""

    name: str
    stored_size: int
    mtime: float | None


@dataclass(frozen=True)
class Pushed:
    """The outcome of a push: the stored size, and whether the same bytes were there already."""

    name: str
    stored_size: int
    already: bool


def folder(url: TargetURL, label: str) -> TargetURL:
    """Given a target and a label, return the target of its WAL archive: PATH/LABEL.wal."""
    sub = label + FOLDER_SUFFIX
    path = url.path.rstrip("/")
    if url.kind in ("s3", "s3multi"):
        return replace(url, path=f"{path}/{sub}" if path else sub)
    if url.kind == "local":
        return replace(url, path=os.path.join(url.path, sub))
    return replace(url, path=f"{path}/{sub}" if path else sub)


def stored_name(walname: str) -> str:
    return walname + SUFFIX


def check_walname(name: str) -> walnames.WalFile:
    """Return NAME parsed if it is a WAL file name PostgreSQL archives; raise IntegrityError
    otherwise (the only names an archive stores or serves)."""
    parsed = walnames.parse(name)
    if parsed is None:
        raise IntegrityError(
            f"{name!r} is not the name of a WAL, .history, .backup or .partial file"
        )
    return parsed


def _hash_file(path: str) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb", buffering=0) as f:
        while data := f.read(BLOCK):
            h.update(data)
            size += len(data)
    return h.hexdigest(), size


def _stored_sha(target: Target, name: str) -> str:
    h = hashlib.sha256()
    reader = target.open(name)
    try:
        while data := reader.read(BLOCK):
            h.update(data)
    finally:
        reader.close()
    return h.hexdigest()


def push(target: Target, path: str, host: str | None = None) -> Pushed:
    """Given the archive's target and the path of a WAL file, store it under its name, checked.
    Return Pushed (already=True when the same bytes were archived before). Raise WalConflict
    if the archive holds other bytes under that name (never overwritten), IntegrityError if
    the name is no WAL file's or the file changed while read, TargetError if storing fails.
    Returns only once the stored object reads back with the sha256 that was sent."""
    name = os.path.basename(path)
    check_walname(name)
    obj = stored_name(name)
    if target.stat(obj) is not None:
        return _same_or_conflict(target, path, name)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        meta = Meta(name, size, time.time(), host or socket.gethostname(), __version__)
        for attempt in (1, 2):
            os.lseek(fd, 0, os.SEEK_SET)
            stream = walformat.PushStream(fd, meta)
            try:
                stored = target.put(obj, stream)
                break
            except AlreadyExists:
                if target.stat(obj) is not None:
                    return _same_or_conflict(target, path, name)
                if attempt == 2:
                    raise
                # A temp left by a push that was killed: no final name stands, so remove it.
                target.remove(obj + ".partial")
    finally:
        os.close(fd)
    if _stored_sha(target, obj) != stream.sent.hexdigest():
        raise IntegrityError(f"{obj} does not read back as it was sent: the target altered it")
    return Pushed(name, stored.size, False)


def _same_or_conflict(target: Target, path: str, name: str) -> Pushed:
    sha, size = _hash_file(path)
    try:
        meta, got_sha = fetch_to(target, name, _discard)
    except IntegrityError as exc:
        raise WalConflict(
            f"the archive's copy of {name} is damaged ({exc}); it is not overwritten: "
            "check and remove it by hand"
        ) from None
    if (meta.size, got_sha) != (size, sha):
        raise WalConflict(
            f"the archive holds another {name} ({meta.size} bytes, sha256 {got_sha[:12]}...; "
            f"this one: {size} bytes, {sha[:12]}...); it is never overwritten"
        )
    entry = target.stat(stored_name(name))
    return Pushed(name, entry.size if entry else 0, True)


def _discard(data: bytes) -> None:
    pass


def _open(target: Target, name: str) -> walformat.Exact:
    check_walname(name)
    try:
        return walformat.Exact(target.open(stored_name(name)), name)
    except NotFound:
        raise WalMissing(f"{name} is not in the archive") from None


def fetch_to(target: Target, name: str, write: Callable[[bytes], object]) -> tuple[Meta, str]:
    """Given an archived WAL file's name, hand its plain bytes to WRITE in order and return
    its header and sha256, once the size and sha256 match the header and the trailer. Raise
    WalMissing if it is not archived, IntegrityError if anything does not match (WRITE may
    have had bytes by then: write to a temporary), TargetError if reading fails."""
    src = _open(target, name)
    try:
        return walformat.decode(src, name, write)
    finally:
        src.reader.close()


def read_meta(target: Target, name: str) -> Meta:
    """Given an archived WAL file's name, return its header, reading only the first bytes.
    Raise WalMissing if it is not archived, IntegrityError if the header is not tiffin's."""
    src = _open(target, name)
    try:
        return walformat.read_header(src, name)
    finally:
        src.reader.close()


def fetch(target: Target, name: str, dest: str) -> Meta:
    """Given an archived WAL file's name and a destination path, write the file there once
    checked (through DEST.tiffin-tmp, renamed over DEST). Raise WalMissing if it is not
    archived, IntegrityError if it does not check (nothing is left at DEST), TargetError if
    reading fails, OSError if DEST cannot be written."""
    temp = dest + ".tiffin-tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb", buffering=BLOCK) as out:
            meta, _ = fetch_to(target, name, out.write)
        os.replace(temp, dest)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    return meta


def listing(target: Target) -> list[Archived]:
    """Return every WAL file the archive holds (leftover temps and other names left out),
    ordered by name: timeline, then segment."""
    found = []
    for e in target.list():
        if e.partial or not e.name.endswith(SUFFIX):
            continue
        name = e.name[: -len(SUFFIX)]
        if walnames.parse(name) is not None:
            found.append(Archived(name, e.size, e.mtime))
    return sorted(found, key=lambda a: a.name)


def remove(target: Target, name: str) -> None:
    """Delete the archived WAL file NAME (absent: no error)."""
    check_walname(name)
    target.remove(stored_name(name))

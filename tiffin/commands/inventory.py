"""list and verify: what a target holds, and whether each stored backup is still sound.

Everything comes from the target itself: backup names (UTC), listed sizes and manifests.
verify re-reads every stored byte once: it counts and hashes them against the manifest (each
chunk of a chunked backup against the manifest's parts, in order), and in the same pass
decrypts (given an age identity) and decompresses the stream to its end.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

from tiffin.catalog.holdings import VANISHED, Item, select, survey
from tiffin.catalog.manifest import Part
from tiffin.catalog.naming import MANIFEST_SUFFIX, parse_name
from tiffin.catalog.retention import COMPLETE, DAMAGED, INCOMPLETE, PARTIAL
from tiffin.engine.stored import decoders_for
from tiffin.engine.streams import BLOCK, HashingReader
from tiffin.errors import BackupFailed, NotFound, TargetError
from tiffin.targets.base import Target

REMOVED = "REMOVED"  # a verdict: removed whole (by a prune) while verify ran


def table(items: list[Item]) -> list[str]:
    """Given items, return the lines of an aligned table, newest first."""
    rows = [("NAME", "WHAT", "SIZE", "CREATED (UTC)", "STATUS")]
    for i in items:
        created = i.backup.created.strftime("%Y-%m-%d %H:%M:%S")
        status = (
            i.state if i.state in (COMPLETE, INCOMPLETE, DAMAGED) else f"incomplete ({i.state})"
        )
        rows.append((i.name, i.what, str(i.backup.size), created, status))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    return [
        "  ".join(
            (cell.rjust(widths[c]) if c == 2 else cell.ljust(widths[c])) for c, cell in enumerate(r)
        ).rstrip()
        for r in rows
    ]


# ---------------------------------------------------------------- verify


@dataclass(frozen=True)
class Verdict:
    """What verify found for one backup."""

    name: str
    state: str  # OK, FAILED or INCOMPLETE
    size: int = 0
    sha256: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "OK"

    def line(self) -> str:
        if self.state == REMOVED:
            return f"REMOVED {self.name}: it was removed while being verified"
        if self.ok:
            note = f"; {self.reason}" if self.reason else ""
            return f"OK {self.name} ({self.size} bytes, sha256 {self.sha256}{note})"
        return f"{self.state} {self.name}: {self.reason}"


class PartsCheck(io.RawIOBase):
    """Passes INNER's bytes through, hashing them part by part as the manifest's PARTS cut
    them, so that the first chunk whose bytes differ can be named."""

    def __init__(self, inner: IO[bytes], parts: tuple[Part, ...]) -> None:
        super().__init__()
        self.inner, self.parts = inner, parts
        self._sha = [hashlib.sha256() for _ in parts]
        self._got = [0] * len(parts)
        self._index, self.extra = 0, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(b))
        n = len(data)
        b[:n] = data
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


def _decoders(name: str, identity: str | None) -> tuple[list[Any], str]:
    """Return the decoding stages, or none and why the stream cannot be decoded here. Raise
    UsageError if the identity file is unusable."""
    parsed = parse_name(name)
    if parsed is not None and parsed.encrypted and not identity:
        return [], "not decrypted: give --identity FILE to check that it decompresses"
    try:
        return decoders_for(name, identity), ""
    except ImportError:
        return [], "not decrypted: this tiffin cannot read age (install pyrage)"


def verify_one(target: Target, item: Item, identity: str | None = None) -> Verdict:
    """Given a target, one of its items and an optional age identity file, re-read the
    stored bytes and return the Verdict: sizes and sha256 (each chunk's too) against the
    manifest, and that the stream decrypts and decompresses to its end."""
    name, m = item.name, item.manifest
    if item.problem == VANISHED:
        return Verdict(name, REMOVED)
    if item.state in (INCOMPLETE, PARTIAL):
        return Verdict(name, "INCOMPLETE", reason=item.problem)
    if m is None:
        return Verdict(name, "FAILED", reason=item.problem)
    stages, note = _decoders(name, identity)
    try:
        stored: IO[bytes] = target.open(name)
    except TargetError as exc:
        if _removed(target, name):
            return Verdict(name, REMOVED)
        if isinstance(exc, NotFound):
            exc = NotFound("its bytes are gone (the manifest is still here)")
        return Verdict(name, "FAILED", reason=str(exc))
    parts = PartsCheck(stored, m.parts) if m.parts else None
    raw = HashingReader(cast(IO[bytes], parts) if parts is not None else stored)
    stream: IO[bytes] = io.BufferedReader(raw, buffer_size=BLOCK)
    undecoded = ""
    try:
        decoded = stream
        for codec in stages:
            decoded = codec.decode(decoded)
        try:
            while decoded.read(BLOCK):
                pass
        except TargetError:
            raise
        except BackupFailed as exc:
            undecoded = f"the stream does not decode to its end: {exc}"
        while stream.read(BLOCK):  # the rest, after a stream that did not decode
            pass
    except TargetError as exc:
        return Verdict(name, REMOVED if _removed(target, name) else "FAILED", reason=str(exc))
    finally:
        stream.close()
    problems = []
    if raw.size != m.size:
        problems.append(f"it holds {raw.size} bytes, its manifest says {m.size}")
    elif raw.sha256 != m.sha256:
        problems.append("its sha256 does not match its manifest")
    if parts is not None and parts.problem():
        problems.append(parts.problem())
    if undecoded:
        problems.append(undecoded)
    if problems:
        return Verdict(name, "FAILED", raw.size, raw.sha256, "; ".join(problems))
    if m.parts:
        note = f"{len(m.parts)} chunks" + (f"; {note}" if note else "")
    return Verdict(name, "OK", raw.size, raw.sha256, note)


def _removed(target: Target, name: str) -> bool:
    """Whether NAME's manifest, read before, is gone: removed whole (manifest first), not lost."""
    try:
        return target.stat(name + MANIFEST_SUFFIX) is None
    except TargetError:
        return False


def pick(target: Target, name: str | None, label: str | None = None) -> list[Item]:
    """Given NAME, 'latest' or None (all), return the items to verify. Raise NotFound if NAME
    is not at the target, or there is no complete backup for 'latest'."""
    items = survey(target)
    if name is None:
        return select(items, label, None)
    if name == "latest":
        for i in select(items, label, None):
            if i.state == COMPLETE:
                return [i]
        raise NotFound("there is no complete backup here to verify as 'latest'")
    found = [i for i in items if i.name == name]
    if not found:
        raise NotFound(f"there is no backup named {name} here")
    return [i for i in found if i.state != PARTIAL] or found


def summary(verdicts: list[Verdict]) -> str:
    """Given the verdicts of verify --all, return its last line."""
    count = {s: sum(v.state == s for v in verdicts) for s in ("OK", "FAILED", "INCOMPLETE")}
    removed = sum(v.state == REMOVED for v in verdicts)
    return (
        f"Verified {len(verdicts)} backups: {count['OK']} OK, {count['FAILED']} FAILED, "
        f"{count['INCOMPLETE']} incomplete"
        + (f", {removed} removed while being verified." if removed else ".")
    )


def problem(verdicts: list[Verdict], every: bool) -> str:
    """Given verify's verdicts, return why it fails (exit 1), or ''. With --all, a backup
    removed meanwhile is no failure; a NAME asked for and removed is, and is said so."""
    if not every and verdicts and verdicts[0].state == REMOVED:
        return f"{verdicts[0].name} was removed while being verified"
    failed = [v.name for v in verdicts if v.state == "FAILED" or (not every and not v.ok)]
    return f"{', '.join(failed)} failed verification" if failed else ""


def verify(target: Target, items: list[Item], identity: str | None = None) -> Iterator[Verdict]:
    """Yield one Verdict per item, in order, as each is verified."""
    for item in items:
        yield verify_one(target, item, identity)

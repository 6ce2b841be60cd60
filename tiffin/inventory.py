"""list and verify: what a target holds, and whether each stored backup is still sound.

Everything comes from the target itself: backup names (UTC), listed sizes and manifests.
verify re-reads every stored byte once: it counts and hashes them against the manifest (each
chunk of a chunked backup against the manifest's parts, in order), and in the same pass
decrypts (given an age identity) and decompresses the stream to its end.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, cast

from tiffin.catalog import Backup, read_manifest
from tiffin.errors import BackupFailed, NotFound, TargetError, UsageError
from tiffin.job import WHATS, TargetURL
from tiffin.manifest import Manifest, Part
from tiffin.naming import MANIFEST_SUFFIX, check_name, parse_name
from tiffin.prune import COMPLETE, DAMAGED, INCOMPLETE, PARTIAL, Candidate, kind_of
from tiffin.sources.identity import key_of
from tiffin.streams import BLOCK, HashingReader
from tiffin.targets.base import Entry, Target

MISSING = "missing"  # a manifest whose backup is gone
VANISHED = "its manifest vanished"  # listed, then gone before it was read: being removed
REMOVED = "REMOVED"  # a verdict: removed whole (by a prune) while verify ran


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Item:
    """One backup at the target, with its manifest when it has a readable one."""

    backup: Backup
    state: str
    manifest: Manifest | None = None
    problem: str = ""

    @property
    def name(self) -> str:
        return self.backup.name

    @property
    def what(self) -> str:
        return self.manifest.what if self.manifest else self.backup.kind

    def candidate(self) -> Candidate | None:
        """Return the backup as prune sees it; None for a manifest without its backup."""
        if self.state == MISSING:
            return None
        mtime = self.backup.mtime
        modified = datetime.fromtimestamp(mtime, UTC) if mtime is not None else None
        b = self.backup
        source = key_of(self.manifest.source) if self.manifest else None
        return Candidate(b.name, b.label, self.what, b.created, self.state, modified, source)

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        parsed = parse_name(self.name)
        return {
            "name": self.name,
            "label": self.backup.label,
            "what": self.what,
            "size": self.backup.size,
            "created": iso(self.backup.created),
            "complete": self.state == COMPLETE,
            "status": self.state,
            "partial": self.state == PARTIAL,
            "encrypted": bool(parsed and parsed.encrypted),
            "compression": parsed.compression if parsed else None,
            "sha256": m.sha256 if m else None,
            "finished": m.finished if m else None,
            "parts": len(m.parts) if m else None,
            "source_id": key_of(m.source) if m else None,
        }


def _manifest(target: Target, name: str) -> tuple[Manifest | None, str]:
    """Return NAME's manifest, or None and why it cannot be read."""
    try:
        return read_manifest(target, name), ""
    except NotFound:
        return None, VANISHED
    except BackupFailed as exc:
        return None, str(exc)


def survey(target: Target, entries: list[Entry] | None = None) -> list[Item]:
    """Given a target, return its backups newest first, each with its state: complete (a
    readable manifest), incomplete (no manifest), partial (an upload in progress or
    abandoned), damaged (a manifest that cannot be read, or beside stored parts that do not
    make a whole) or missing (a manifest without its bytes); ENTRIES: target.list(), if had.
    Other files (drill records too) are ignored. Raise TargetError if it cannot be listed."""
    entries = target.list() if entries is None else entries
    manifests = {
        e.name[: -len(MANIFEST_SUFFIX)]: e
        for e in entries
        if e.name.endswith(MANIFEST_SUFFIX) and not e.partial
    }
    whole = {e.name for e in entries if not e.partial}
    items: list[Item] = []
    for e in entries:
        parsed = parse_name(e.name)
        if parsed is None:
            continue
        listed = e.name in manifests and not e.partial
        b = Backup(
            e.name,
            parsed.label,
            parsed.kind,
            parsed.created,
            e.size,
            listed,
            e.partial,
            None,
            e.mtime,
        )
        if e.partial and (e.name not in manifests or e.name in whole):
            items.append(Item(b, PARTIAL, problem="an upload in progress or abandoned"))
        elif e.partial:  # a manifest, but stored parts that do not make a whole (a lost chunk)
            m, why = _manifest(target, e.name)
            items.append(Item(b, DAMAGED, m, why or "its stored parts do not make a whole"))
        elif not listed:
            items.append(Item(b, INCOMPLETE, problem="it has no manifest"))
        else:
            m, why = _manifest(target, e.name)
            state = COMPLETE if m else INCOMPLETE if why == VANISHED else DAMAGED
            items.append(Item(b, state, m, why))
    named = {i.name for i in items if i.state != PARTIAL}
    for base, e in manifests.items():
        parsed = parse_name(base)
        if parsed and base not in named:
            b = Backup(base, parsed.label, parsed.kind, parsed.created, 0, False, mtime=e.mtime)
            m, _ = _manifest(target, base)
            items.append(Item(b, MISSING, m, "its manifest is here but its bytes are gone"))
    items.sort(key=lambda i: (i.backup.created, i.name, i.state != PARTIAL), reverse=True)
    return items


def check_what(text: str | None) -> str | None:
    """Given --what (or None), return the WHAT it names (sql for mysql and pgsql alike).
    Raise UsageError if it names none."""
    if text is None:
        return None
    what = "sql" if text.lower() == "sql" else WHATS.get(text.lower())
    if what is None:
        raise UsageError(f"--what {text!r}: use mysql, pgsql, data, sqlite or sql")
    return what


def select(items: list[Item], label: str | None, what: str | None) -> list[Item]:
    """Given items, a label and a WHAT (mysql, pgsql, data, sqlite or sql; None: any), return
    those that match. An incomplete sql backup matches both mysql and pgsql."""
    return [
        i
        for i in items
        if (label is None or i.backup.label == label)
        and (
            what is None
            or what in (i.what, kind_of(i.what))
            or (i.manifest is None and i.what == kind_of(what))
        )
    ]


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
    from tiffin.pipeline import decoders_for

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


def verify_args(args: list[str], every: bool, identity: str | None) -> tuple[TargetURL, str | None]:
    """Given verify's positionals, --all and --identity, return the target and the NAME to
    verify (None: all). Raise UsageError if they do not fit together."""
    from tiffin.options import target_of

    if identity and not os.access(os.path.expanduser(identity), os.R_OK):
        raise UsageError(f"cannot read the identity file {identity}")
    if every and args and (parse_name(args[-1]) or args[-1] == "latest"):
        raise UsageError(f"give a backup NAME or --all, not both (got {args[-1]!r})")
    url, rest = target_of(args, min_rest=0 if every else 1)
    if every:
        return url, None
    if len(rest) != 1:
        raise UsageError("verify takes one backup NAME (or latest), or --all")
    return url, check_name(rest[0])


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

"""What a target holds, read from its names and manifests: no local state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tiffin.catalog.manifest import MAX_BYTES, Manifest
from tiffin.catalog.naming import MANIFEST_SUFFIX, PARTIAL_SUFFIX, parse_name
from tiffin.catalog.retention import (
    COMPLETE,
    DAMAGED,
    INCOMPLETE,
    MISSING,
    PARTIAL,
    Candidate,
    State,
    kind_of,
)
from tiffin.engine import lock
from tiffin.errors import BackupFailed, IntegrityError, NotFound, UsageError
from tiffin.sources import SOURCES, WHATS, spoken
from tiffin.sources.identity import key_of
from tiffin.targets.base import Entry, Target

# How many seconds past its start a backup's name may be, when runs of other sources took
# the names of the seconds before (see free_name).
NAME_SECONDS = 300


@dataclass(frozen=True)
class Backup:
    name: str
    label: str
    kind: str  # sql, data or sqlite: what the name tells
    created: datetime
    size: int
    complete: bool
    partial: bool = False
    manifest: Manifest | None = None
    mtime: float | None = None  # the last write the target reports, when it reports one

    @property
    def what(self) -> str:
        if self.manifest is not None:
            return self.manifest.what
        return self.kind


def read_manifest(target: Target, name: str) -> Manifest:
    """Given a target and a backup name, return its manifest. Raise NotFound if it has none,
    IntegrityError if it is not valid."""
    stream = target.open(name + MANIFEST_SUFFIX)
    chunks: list[bytes] = []
    got = 0
    try:
        while got <= MAX_BYTES:  # one byte more than the limit tells a manifest too large
            chunk = stream.read(min(1 << 20, MAX_BYTES + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    finally:
        stream.close()
    return Manifest.from_json(b"".join(chunks), name)


def scan(target: Target, with_manifests: bool = False) -> list[Backup]:
    """Given a target, return its backups newest first: complete ones (with a manifest) and
    incomplete ones (no manifest, or a .partial leftover). Other files are ignored. With
    WITH_MANIFESTS, each complete backup's manifest is read and attached."""
    entries = target.list()
    manifests = {
        e.name[: -len(MANIFEST_SUFFIX)]
        for e in entries
        if e.name.endswith(MANIFEST_SUFFIX) and not e.partial
    }
    out: list[Backup] = []
    for e in entries:
        parsed = parse_name(e.name)
        if parsed is None:
            continue
        complete = e.name in manifests and not e.partial
        manifest = None
        if complete and with_manifests:
            try:
                manifest = read_manifest(target, e.name)
            except (IntegrityError, NotFound):
                complete = False
        out.append(
            Backup(
                e.name,
                parsed.label,
                parsed.kind,
                parsed.created,
                e.size,
                complete,
                e.partial,
                manifest,
                e.mtime,
            )
        )
    out.sort(key=lambda b: (b.created, b.name, not b.partial), reverse=True)
    return out


def resolve(target: Target, name: str, label: str | None = None, source: str | None = None) -> str:
    """Given NAME or 'latest', return the backup name to use. 'latest' is the newest complete
    backup (of LABEL, and of the source whose identity key is SOURCE, when given). Raise
    NotFound if there is none."""
    if name != "latest":
        return name
    found = latest(target, label, source=source)
    if found is None:
        of = f" of the source {source}" if source is not None else ""
        raise NotFound(f"there is no complete backup{of} here to restore as 'latest'")
    return found[0].name


def latest(
    target: Target,
    label: str | None = None,
    what: str | None = None,
    source: str | None = None,
    *,
    kind: str | None = None,
    exact_source: bool = False,
    read: bool = False,
) -> tuple[Backup, Manifest | None] | None:
    """The one place 'latest' is decided. Given a target, return its newest complete backup
    of LABEL, of KIND (what its name tells), of WHAT (its manifest's) and of the source whose
    identity key is SOURCE (None: any source; with EXACT_SOURCE, None is only a manifest that
    records none), with its manifest when it was read (READ, WHAT or a source given); None if
    there is none. A backup whose manifest had to be read and cannot be is passed over.
    Raise TargetError if the target cannot be listed."""
    by_source = source is not None or exact_source
    for b in scan(target):
        if not b.complete or (label is not None and b.label != label):
            continue
        if kind is not None and b.kind != kind:
            continue
        m = None
        if read or what is not None or by_source:
            try:
                m = read_manifest(target, b.name)
            except BackupFailed:
                continue
            if (what is not None and m.what != what) or (by_source and key_of(m.source) != source):
                continue
        return b, m
    return None


def previous_complete(
    target: Target, label: str, what: str, kind: str, source: str | None = None
) -> Backup | None:
    """Return the newest complete backup of LABEL, WHAT and the source whose identity key is
    SOURCE (None: a manifest that records none) at TARGET, or None."""
    found = latest(target, label, what, source, kind=kind, exact_source=True)
    if found is None or found[1] is None:
        return None
    b, m = found[0], found[1]
    return Backup(b.name, b.label, b.kind, b.created, m.size, True, False, m)


def free_name(
    target: Target, where: str, when: datetime, name_of: Callable[[datetime], str]
) -> tuple[str, lock.Lock]:
    """Given a target (WHERE: its URL without password), the time a backup started and how
    its name reads at a time, return the name of the first second from WHEN that no backup
    at the target holds (complete or not) and no other run on this machine has claimed, and
    the claim on it (release it when the backup ends). A backup is never overwritten, and
    never fails because a backup of another source took its second: it takes the next one
    (SPEC §2's name form is kept). Raise BackupFailed if NAME_SECONDS seconds are taken."""
    for step in range(NAME_SECONDS):
        name = name_of(when + timedelta(seconds=step))
        claim = lock.claim(where, name)
        if claim is None:
            continue
        if target.stat(name) is None and target.stat(name + PARTIAL_SUFFIX) is None:
            return name, claim
        claim.close()
    raise BackupFailed(
        f"every backup name of the {NAME_SECONDS} seconds from {name_of(when)} is taken at {where}"
    )


VANISHED = "its manifest vanished"  # listed, then gone before it was read: being removed


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Item:
    """One backup at the target, with its manifest when it has a readable one."""

    backup: Backup
    state: State
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
        raise UsageError(f"--what {text!r}: use {spoken([*SOURCES, 'sql'])}")
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

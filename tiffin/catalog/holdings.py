"""What a target holds, read from its names and manifests: no local state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from tiffin.catalog.backup import (
    COMPLETE,
    DAMAGED,
    INCOMPLETE,
    MISSING,
    PARTIAL,
    Backup,
    State,
    kind_of,
    modified_at,
)
from tiffin.catalog.manifest import MAX_BYTES, Manifest
from tiffin.catalog.naming import MANIFEST_SUFFIX, PARTIAL_SUFFIX, ParsedName, parse_name
from tiffin.engine import lock
from tiffin.errors import BackupFailed, NotFound, UsageError
from tiffin.sources import SOURCES, TYPED, WHATS, spoken
from tiffin.sources.identity import key_of
from tiffin.targets.base import Entry, Target

# How many seconds past its start a backup's name may be, when runs of other sources took
# the names of the seconds before (see free_name).
NAME_SECONDS = 300


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


def resolve(
    target: Target,
    name: str,
    label: str | None = None,
    source: str | None = None,
    kind: str | None = None,
) -> str:
    """Given NAME or 'latest', return the backup name to use. 'latest' is the newest complete
    backup (of LABEL, of the source whose identity key is SOURCE, and whose name tells KIND,
    when given). Raise NotFound if there is none."""
    if name != "latest":
        return name
    found = latest(target, label, source=source, kind=kind)
    if found is None:
        of = f" of the source {source}" if source is not None else ""
        other = latest(target, label, source=source) if kind is not None else None
        raise NotFound(f"there is no complete backup{of} here to restore as 'latest'{hint(other)}")
    return found.name


def hint(other: Backup | None) -> str:
    """Given the newest backup of another kind than asked (or None), return what to say of it:
    how it is restored."""
    if other is None:
        return ""
    k = SOURCES.get(other.what)
    into = f"--into {k.into}" + (" --dir DATADIR" if k.physical_of else "") if k else None
    how = into or "--into mysql or --into pgsql"  # a dump, known by its name alone
    return f" with that --into: the newest is {other.name}, restored {how}"


def with_manifest(target: Target, b: Backup) -> Backup:
    """Given a backup at TARGET, return it with its manifest read and attached (its WHAT and
    source taken from it). Raise NotFound if it has none, IntegrityError if it is not valid."""
    m = read_manifest(target, b.name)
    return replace(b, what=m.what, source=key_of(m.source), manifest=m)


def latest(
    target: Target,
    label: str | None = None,
    what: str | None = None,
    source: str | None = None,
    *,
    kind: str | None = None,
    exact_source: bool = False,
    read: bool = False,
) -> Backup | None:
    """The one place 'latest' is decided. Given a target, return its newest complete backup
    of LABEL, of KIND (what its name tells), of WHAT (its manifest's) and of the source whose
    identity key is SOURCE (None: any source; with EXACT_SOURCE, None is only a manifest that
    records none), with its manifest attached when it was read (READ, WHAT or a source
    given); None if there is none. A backup whose manifest had to be read and cannot be is
    passed over. Raise TargetError if the target cannot be listed."""
    by_source = source is not None or exact_source
    for b in survey(target, read=False):
        if not b.complete or (label is not None and b.label != label):
            continue
        if kind is not None and b.kind != kind:
            continue
        if read or what is not None or by_source:
            try:
                b = with_manifest(target, b)
            except BackupFailed:
                continue
            if (what is not None and b.what != what) or (by_source and b.source != source):
                continue
        return b
    return None


def previous_complete(
    target: Target, label: str, what: str, kind: str, source: str | None = None
) -> Backup | None:
    """Return the newest complete backup of LABEL, WHAT and the source whose identity key is
    SOURCE (None: a manifest that records none) at TARGET, or None."""
    found = latest(target, label, what, source, kind=kind, exact_source=True)
    if found is None or found.manifest is None:
        return None
    return replace(found, size=found.manifest.size)


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


def _manifest(target: Target, name: str) -> tuple[Manifest | None, str]:
    """Return NAME's manifest, or None and why it cannot be read."""
    try:
        return read_manifest(target, name), ""
    except NotFound:
        return None, VANISHED
    except BackupFailed as exc:
        return None, str(exc)


def _at(e: Entry, parsed: ParsedName, state: State, m: Manifest | None, problem: str) -> Backup:
    """Given a listed entry, its parsed name, its state and its manifest if read, return it."""
    what, source = (m.what, key_of(m.source)) if m else (parsed.kind, None)
    return Backup(
        e.name,
        parsed.label,
        what,
        parsed.created,
        state,
        modified_at(e.mtime),
        source,
        e.size,
        m,
        problem,
    )


def survey(target: Target, entries: list[Entry] | None = None, read: bool = True) -> list[Backup]:
    """The one listing of what a target holds. Given a target, return its backups newest
    first, each with its state: complete (a readable manifest), incomplete (no manifest),
    partial (an upload in progress or abandoned), damaged (a manifest that cannot be read, or
    beside stored parts that do not make a whole) or missing (a manifest without its bytes);
    ENTRIES: target.list(), if had. Without READ no manifest is read: a backup whose
    manifest is listed counts as complete. Other files (drill records too) are ignored.
    Raise TargetError if it cannot be listed."""
    entries = target.list() if entries is None else entries
    manifests = {
        e.name[: -len(MANIFEST_SUFFIX)]: e
        for e in entries
        if e.name.endswith(MANIFEST_SUFFIX) and not e.partial
    }
    whole = {e.name for e in entries if not e.partial}

    def manifest(name: str) -> tuple[Manifest | None, str]:
        return _manifest(target, name) if read else (None, "")

    found: list[Backup] = []
    for e in entries:
        parsed = parse_name(e.name)
        if parsed is None:
            continue
        if e.partial and (e.name not in manifests or e.name in whole):
            b = _at(e, parsed, PARTIAL, None, "an upload in progress or abandoned")
        elif e.partial:  # a manifest, but stored parts that do not make a whole (a lost chunk)
            m, why = manifest(e.name)
            b = _at(e, parsed, DAMAGED, m, why or "its stored parts do not make a whole")
        elif e.name not in manifests:
            b = _at(e, parsed, INCOMPLETE, None, "it has no manifest")
        elif not read:
            b = _at(e, parsed, COMPLETE, None, "")
        else:
            m, why = manifest(e.name)
            b = _at(
                e, parsed, COMPLETE if m else INCOMPLETE if why == VANISHED else DAMAGED, m, why
            )
        found.append(b)
    named = {b.name for b in found if b.state != PARTIAL}
    for base, e in manifests.items():
        parsed = parse_name(base)
        if parsed and base not in named:
            m, _ = manifest(base)
            b = _at(e, parsed, MISSING, m, "its manifest is here but its bytes are gone")
            found.append(replace(b, name=base, size=0))
    found.sort(key=lambda b: (b.created, b.name, b.state != PARTIAL), reverse=True)
    return found


def check_what(text: str | None) -> str | None:
    """Given --what (or None), return the WHAT it names (sql for mysql and pgsql alike).
    Raise UsageError if it names none."""
    if text is None:
        return None
    what = "sql" if text.lower() == "sql" else WHATS.get(text.lower())
    if what is None:
        raise UsageError(f"--what {text!r}: use {spoken([*TYPED, 'sql'])}")
    return what


def select(items: list[Backup], label: str | None, what: str | None) -> list[Backup]:
    """Given items, a label and a WHAT (mysql, pgsql, data, sqlite or sql; None: any), return
    those that match. An incomplete sql backup matches both mysql and pgsql."""
    return [
        i
        for i in items
        if (label is None or i.label == label)
        and (
            what is None
            or what in (i.what, kind_of(i.what))
            or (i.manifest is None and i.what == kind_of(what))
        )
    ]

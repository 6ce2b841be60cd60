"""What a target holds, read from its names and manifests: no local state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tiffin import lock
from tiffin.errors import BackupFailed, IntegrityError, NotFound
from tiffin.manifest import MAX_BYTES, Manifest
from tiffin.naming import MANIFEST_SUFFIX, PARTIAL_SUFFIX, parse_name
from tiffin.sources.identity import key_of
from tiffin.targets.base import Target

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
    for b in scan(target):
        if not b.complete or (label is not None and b.label != label):
            continue
        if source is not None:
            try:
                if key_of(read_manifest(target, b.name).source) != source:
                    continue
            except BackupFailed:
                continue
        return b.name
    of = f" of the source {source}" if source is not None else ""
    raise NotFound(f"there is no complete backup{of} here to restore as 'latest'")


def previous_complete(
    target: Target, label: str, what: str, kind: str, source: str | None = None
) -> Backup | None:
    """Return the newest complete backup of LABEL, WHAT and the source whose identity key is
    SOURCE (None: a manifest that records none) at TARGET, or None."""
    for b in scan(target):
        if not b.complete or b.label != label or b.kind != kind:
            continue
        try:
            m = read_manifest(target, b.name)
        except BackupFailed:
            continue
        if m.what == what and key_of(m.source) == source:
            return Backup(b.name, b.label, b.kind, b.created, m.size, True, False, m)
    return None


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

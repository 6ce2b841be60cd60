"""What a target holds, read from its names and manifests: no local state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tiffin.errors import BackupFailed, IntegrityError, NotFound
from tiffin.manifest import MAX_BYTES, Manifest
from tiffin.naming import MANIFEST_SUFFIX, parse_name
from tiffin.targets.base import Target


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


def resolve(target: Target, name: str, label: str | None = None) -> str:
    """Given NAME or 'latest', return the backup name to use. 'latest' is the newest complete
    backup (of LABEL when given). Raise NotFound if there is none."""
    if name != "latest":
        return name
    for b in scan(target):
        if b.complete and (label is None or b.label == label):
            return b.name
    raise NotFound("there is no complete backup here to restore as 'latest'")


def previous_complete(target: Target, label: str, what: str, kind: str) -> Backup | None:
    """Return the newest complete backup of LABEL and WHAT at TARGET, or None."""
    for b in scan(target):
        if not b.complete or b.label != label or b.kind != kind:
            continue
        try:
            m = read_manifest(target, b.name)
        except BackupFailed:
            continue
        if m.what == what:
            return Backup(b.name, b.label, b.kind, b.created, m.size, True, False, m)
    return None

"""One backup a target holds, and its state: the one type list, verify, prune, restore and
drill share (tiffin/catalog/holdings.py makes them; tiffin/catalog/retention.py judges them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tiffin.catalog.manifest import Manifest
from tiffin.catalog.naming import parse_name


class State(StrEnum):
    """What a target holds of one backup (its str() is the word `list` shows)."""

    COMPLETE = "complete"  # its bytes and a readable manifest
    INCOMPLETE = "incomplete"  # its bytes and no manifest
    PARTIAL = "partial"  # an upload in progress or abandoned
    DAMAGED = "damaged"  # an unreadable manifest, or stored parts that do not make a whole
    MISSING = "missing"  # a manifest whose bytes are gone


COMPLETE, INCOMPLETE, PARTIAL = State.COMPLETE, State.INCOMPLETE, State.PARTIAL
DAMAGED, MISSING = State.DAMAGED, State.MISSING


def kind_of(what: str) -> str:
    """Given a WHAT (mysql, pgsql, data, sqlite, or sql), return what a name tells of it."""
    return "sql" if what in ("mysql", "pgsql", "sql") else what


@dataclass(frozen=True)
class Backup:
    """One backup at a target. WHAT is its manifest's (mysql, pgsql, data, sqlite) when the
    manifest was read, else what the name tells (sql, data, sqlite). CREATED comes from the
    name (UTC); MODIFIED is the last write the target reports, if any; SOURCE is the source's
    identity key its manifest records; SIZE is what the target lists; PROBLEM says why a
    backup is not complete."""

    name: str
    label: str
    what: str
    created: datetime
    state: State = COMPLETE
    modified: datetime | None = None
    source: str | None = None
    size: int = 0
    manifest: Manifest | None = None
    problem: str = ""

    @property
    def complete(self) -> bool:
        return self.state == COMPLETE

    @property
    def kind(self) -> str:
        """What the name tells: sql, data or sqlite."""
        return kind_of(self.what)

    def to_json(self) -> dict[str, Any]:
        """Return what `list --json` shows of it."""
        m = self.manifest
        parsed = parse_name(self.name)
        return {
            "name": self.name,
            "label": self.label,
            "what": self.what,
            "size": self.size,
            "created": iso(self.created),
            "complete": self.state == COMPLETE,
            "status": self.state,
            "partial": self.state == PARTIAL,
            "encrypted": bool(parsed and parsed.encrypted),
            "compression": parsed.compression if parsed else None,
            "sha256": m.sha256 if m else None,
            "finished": m.finished if m else None,
            "parts": len(m.parts) if m else None,
            "source_id": self.source,
        }


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def modified_at(mtime: float | None) -> datetime | None:
    """Given the last write a target lists (seconds since the epoch, or None), return it."""
    return datetime.fromtimestamp(mtime, UTC) if mtime is not None else None

"""The manifest written beside each complete backup, after every byte is stored.

A manifest read back is input from strangers: from_json holds it to SCHEMA (every field its
readers use, with its type and range; unknown fields are tolerated, for a newer tiffin's
sake) and to MAX_BYTES, so that every reader gets either a valid Manifest or one clear error.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from tiffin import __version__
from tiffin.catalog.naming import BASE_EXT
from tiffin.catalog.schema import AnyOf, Fields, Hex, Invalid, List, Map, Optional, check
from tiffin.errors import IntegrityError

FORMAT = 1
# The largest manifest tiffin writes or reads. The writer keeps under it (to_json drops the
# per-table details first, which is what grows with a server's size: 20,000 SQLite tables of
# 200-character names take about 4.3 MB), so every manifest written is read back; the reader
# refuses anything larger, so a hostile "manifest" of gigabytes cannot exhaust memory.
MAX_BYTES = 64 << 20
# What to_json drops, in this order, when a manifest would be larger than MAX_BYTES.
TRIMMABLE = ("rows_estimated", "rows", "engines", "extensions", "tables")
WHATS = tuple(BASE_EXT)  # the WHATs a backup name can carry

_TABLES = Map(List(str))  # mysql, pgsql: {database: [table, ...]}
_COUNTS = Map(Map(int))  # mysql, pgsql: {database: {table: rows}}
SOURCE = Fields(
    {
        "server": str,
        "consistency": str,
        "databases": List(str),
        "single_database": bool,
        "roles": bool,
        "engines": Map(int),
        "extensions": Map(Map(str)),
        "tables": AnyOf(_TABLES, Map(int)),  # sqlite: {table: rows}
        "rows": _COUNTS,
        "rows_estimated": _COUNTS,
        "journal_mode": str,
        "files": int,
        "bytes": int,
        "omitted": List(str),
    }
)
PART = Fields({"name": str, "size": int, "sha256": Hex(64)}, frozenset({"name", "size", "sha256"}))
REQUIRED = ("name", "what", "label", "started", "finished", "size", "sha256", "compression")
SCHEMA = Fields(
    {
        **dict.fromkeys(("name", "what", "label", "started", "finished", "compression"), str),
        "size": int,
        "sha256": Hex(64),
        "parts": Optional(List(PART)),
        "encryption": Optional(Fields({"recipients": List(str)})),
        "source": Optional(SOURCE),
        "tool": str,
        "format": int,
    },
    frozenset(REQUIRED),
)


@dataclass(frozen=True)
class Part:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    name: str
    what: str
    label: str
    started: str
    finished: str
    size: int
    sha256: str
    compression: str
    parts: tuple[Part, ...] = ()
    encryption: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)
    tool: str = f"tiffin {__version__}"
    format: int = FORMAT

    def to_json(self) -> bytes:
        """Return the manifest's bytes, under MAX_BYTES: per-table details are left out (and
        their keys listed under source.omitted) when they would not fit. Raise IntegrityError
        if even without them it does not fit, or if it would not read back."""
        data = asdict(self)
        data["parts"] = [asdict(p) for p in self.parts]
        data["encryption"] = {"recipients": list(self.encryption)} if self.encryption else None
        source = dict(self.source)
        for key in ("", *TRIMMABLE):
            if key in source:
                del source[key]
                source["omitted"] = [*source.get("omitted", ()), key]
            elif key:
                continue
            raw = (json.dumps({**data, "source": source}, indent=2) + "\n").encode()
            if len(raw) <= MAX_BYTES:
                Manifest.from_json(raw, self.name)  # what is written must read back
                return raw
        raise IntegrityError(f"the manifest of {self.name} would be larger than {MAX_BYTES} bytes")

    @classmethod
    def from_json(cls, raw: bytes, name: str) -> Manifest:
        """Given a manifest's bytes, return it. Raise IntegrityError if it is not a valid one."""
        if len(raw) > MAX_BYTES:
            raise IntegrityError(
                f"the manifest of {name} is larger than {MAX_BYTES >> 20} MiB, "
                "more than tiffin ever writes"
            )
        try:
            data = json.loads(raw)
            check(data, SCHEMA, "manifest")
        except RecursionError:
            raise IntegrityError(f"the manifest of {name} is not valid: nested too deep") from None
        except (ValueError, UnicodeDecodeError) as exc:  # Invalid and JSON errors
            why = str(exc) if isinstance(exc, Invalid) else f"not JSON ({exc})"
            raise IntegrityError(f"the manifest of {name} is not valid: {why}") from None
        if data["name"] != name:
            raise IntegrityError(f"the manifest of {name} names another backup ({data['name']})")
        if data["what"] not in WHATS:
            raise IntegrityError(
                f"the manifest of {name} is of an unknown kind {data['what']!r} "
                "(made by a newer tiffin?)"
            )
        if data.get("format", FORMAT) > FORMAT:
            raise IntegrityError(
                f"the manifest of {name} is of format {data['format']}, newer than this tiffin "
                f"reads ({FORMAT}): upgrade tiffin to read it"
            )
        source = data.get("source") or {}
        if source.get("single_database") and not source.get("databases"):
            raise IntegrityError(f"the manifest of {name} names no database for its one database")
        return cls(
            name=data["name"],
            what=data["what"],
            label=data["label"],
            started=data["started"],
            finished=data["finished"],
            size=data["size"],
            sha256=data["sha256"],
            compression=data["compression"],
            parts=tuple(Part(p["name"], p["size"], p["sha256"]) for p in data.get("parts") or ()),
            encryption=tuple((data.get("encryption") or {}).get("recipients", ())),
            source=source,
            tool=data.get("tool", ""),
            format=data.get("format", FORMAT),
        )

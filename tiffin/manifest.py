"""The manifest written beside each complete backup, after every byte is stored."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from tiffin import __version__
from tiffin.errors import IntegrityError

FORMAT = 1


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
        data = asdict(self)
        data["parts"] = [asdict(p) for p in self.parts]
        data["encryption"] = {"recipients": list(self.encryption)} if self.encryption else None
        return (json.dumps(data, indent=2, sort_keys=False) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes, name: str) -> Manifest:
        """Given a manifest's bytes, return it. Raise IntegrityError if it is not a valid one."""
        try:
            data = json.loads(raw)
            enc = data.get("encryption") or {}
            m = cls(
                name=str(data["name"]),
                what=str(data["what"]),
                label=str(data["label"]),
                started=str(data["started"]),
                finished=str(data["finished"]),
                size=int(data["size"]),
                sha256=str(data["sha256"]),
                compression=str(data["compression"]),
                parts=tuple(
                    Part(str(p["name"]), int(p["size"]), str(p["sha256"]))
                    for p in data.get("parts") or ()
                ),
                encryption=tuple(str(r) for r in enc.get("recipients", ())),
                source=dict(data.get("source") or {}),
                tool=str(data.get("tool", "")),
                format=int(data.get("format", FORMAT)),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IntegrityError(f"the manifest of {name} is not valid: {exc}") from None
        if m.name != name:
            raise IntegrityError(f"the manifest of {name} names another backup ({m.name})")
        if m.size < 0 or len(m.sha256) != 64:
            raise IntegrityError(f"the manifest of {name} holds an impossible size or checksum")
        return m

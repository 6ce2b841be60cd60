"""A drill's result, stored beside its backup as NAME.drill.json (SPEC §4) for `status`.

    {"name": NAME, "drilled_at": "2026-12-07T04:00:00Z", "passed": true, "into": "pgsql",
     "checked": {"summary": "1 database, 2 tables, 5 rows",
                 "counts": {"databases": 1, "tables": 2, "rows": 5}, "warnings": [...]},
     "reason": null, "tiffin_version": "..."}

It is written after every drill that reached its backup, passed or failed (not when the
drill was refused, interrupted, or pointed at a backup of another kind), through the
target's own put, as the one object a later drill may replace. It holds nothing of the
connection: no address, user or password. A record that cannot be stored is a warning of
the drill's report; the verdict stands. `list` ignores it (it is no backup name) and
`prune` deletes it with its backup, and any record whose backup is gone.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tiffin import __version__
from tiffin.catalog.naming import DRILL_SUFFIX
from tiffin.errors import TiffinError
from tiffin.targets.base import Target

_COUNT = re.compile(r"([\d,]+) ([a-z]+?)s?(?:,|$)")


def counts_of(summary: str) -> dict[str, int]:
    """Given a drill's summary ('1 database, 2 tables, 5 rows'), return its counts by plural
    word ({'databases': 1, 'tables': 2, 'rows': 5}). Pure."""
    return {f"{word}s": int(n.replace(",", "")) for n, word in _COUNT.findall(summary)}


def record(
    name: str,
    into: str,
    passed: bool,
    summary: str | None,
    warnings: Sequence[str] = (),
    reason: str | None = None,
    when: datetime | None = None,
) -> dict[str, Any]:
    """Return the drill record of backup NAME drilled --into INTO. Pure but for the clock."""
    when = when or datetime.now(UTC)
    return {
        "name": name,
        "drilled_at": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "passed": passed,
        "into": into,
        "checked": {
            "summary": summary,
            "counts": counts_of(summary or ""),
            "warnings": list(warnings),
        },
        "reason": None if passed else reason,
        "tiffin_version": __version__,
    }


def store(target: Target, rec: dict[str, Any]) -> list[str]:
    """Store REC beside its backup, replacing the backup's previous record. Return the
    warnings to report: none, or one sentence saying why it could not be stored."""
    name = rec["name"] + DRILL_SUFFIX
    data = json.dumps(rec, indent=2, ensure_ascii=False).encode() + b"\n"
    try:
        target.put(name, io.BytesIO(data), replace=True)
    except TiffinError as exc:
        return [f"the drill's result could not be stored as {name}: {exc}"]
    return []


# A record tiffin writes is well under this; anything larger is not one of them.
RECORD_MAX = 1 << 20


@dataclass(frozen=True)
class Drilled:
    """What status shows of a drill record read back: the backup it drilled, when, whether it
    passed and why not. PROBLEM is set (and PASSED false) when the record cannot be read."""

    name: str
    drilled_at: datetime | None
    passed: bool
    reason: str | None = None
    problem: str = ""


def read_record(target: Target, name: str) -> Drilled:
    """Given a target and a backup NAME, return its drill record as read back. A record is
    input from strangers: one that is too large, not JSON or not of the record's form comes
    back with its PROBLEM said. Raise NotFound if there is none, TargetError if it cannot be
    read."""
    stream = target.open(name + DRILL_SUFFIX)
    try:
        raw = stream.read(RECORD_MAX + 1)
        while len(raw) <= RECORD_MAX:
            more = stream.read(RECORD_MAX + 1 - len(raw))
            if not more:
                break
            raw += more
    finally:
        stream.close()
    try:
        if len(raw) > RECORD_MAX:
            raise ValueError(f"it is larger than {RECORD_MAX >> 20} MiB")
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("name") != name:
            raise ValueError("it is not the record of this backup")
        passed, when, reason = data.get("passed"), data.get("drilled_at"), data.get("reason")
        if not isinstance(passed, bool) or not isinstance(when, str):
            raise ValueError("it says neither when nor whether the drill passed")
        at = datetime.fromisoformat(when.replace("Z", "+00:00"))
        if at.tzinfo is None:
            raise ValueError("its time has no zone")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        why = f"{name}{DRILL_SUFFIX} cannot be read: {exc}"
        return Drilled(name, None, False, why, why)
    return Drilled(name, at.astimezone(UTC), passed, reason if isinstance(reason, str) else None)

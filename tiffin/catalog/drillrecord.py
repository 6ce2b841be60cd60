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

"""Prune a target: apply the retention policy (tiffin/catalog/retention.py) to what it
holds (tiffin/catalog/holdings.py) and delete what the policy lets go.

Deleting a complete backup removes its manifest first, then its bytes, then its drill record
(NAME.drill.json), so that a deletion cut short leaves an incomplete backup (which a later
prune removes), never a manifest that vouches for missing bytes. A drill record whose backup
is gone (a deletion cut short, or a drill that ended while its backup was pruned) is removed
by the next prune of its label, and so is a drill record's leftover temporary once 24 hours
old."""

from __future__ import annotations

from datetime import UTC, datetime

from tiffin.catalog.backup import MISSING, PARTIAL
from tiffin.catalog.holdings import survey
from tiffin.catalog.naming import DRILL_SUFFIX, MANIFEST_SUFFIX, PARTIAL_SUFFIX
from tiffin.catalog.retention import Decision, matches, plan, stray_records
from tiffin.errors import TargetError
from tiffin.job import Retention
from tiffin.targets.base import Target


def remove_partial(target: Target, name: str) -> None:
    """Remove NAME's partial leftover: the NAME.partial file of a folder, FTP or SSH target,
    or the uncompleted upload that an S3 target lists under NAME (its remove() aborts it)."""
    target.remove(name + PARTIAL_SUFFIX)
    left = target.stat(name)
    if left is None or left.partial:
        target.remove(name)


def delete(target: Target, decision: Decision) -> None:
    """Given a Decision to delete, remove that backup from TARGET: the manifest first, then the
    bytes. Raise TargetError if the target refuses."""
    b = decision.backup
    if b.state == PARTIAL:
        remove_partial(target, b.name)
        return
    target.remove(b.name + MANIFEST_SUFFIX)
    target.remove(b.name)
    target.remove(b.name + DRILL_SUFFIX)


def apply_policy(
    target: Target,
    retention: Retention,
    label: str | None = None,
    what: str | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    source: str | None = None,
) -> list[Decision]:
    """Given a connected target, a retention policy, optionally a LABEL and a WHAT (mysql,
    pgsql, data, sqlite) and a SOURCE identity key to limit it to, the time now (default: the
    clock) and whether to delete nothing, prune the target and return every Decision, newest
    first (deleted ones are gone when it returns, unless DRY_RUN). This is what `tiffin
    prune` runs, and what `tiffin backup --keep-*` runs after a successful backup. Raise
    UsageError if the policy keeps nothing, TargetError (saying what was deleted before) if
    a deletion fails."""
    now = now or datetime.now(UTC)
    entries = target.list()
    candidates = [
        b
        for b in survey(target, entries)
        if b.state != MISSING and matches(b, label, what, source)  # a manifest alone is left
    ]
    decisions = plan(candidates, retention, now)
    if dry_run:
        return decisions
    done: list[str] = []
    for d in decisions:
        if d.keep:
            continue
        try:
            delete(target, d)
        except TargetError as exc:
            gone = f" (deleted before it: {', '.join(done)})" if done else ""
            raise TargetError(f"could not delete {d.name}: {exc}{gone}") from exc
        done.append(d.name)
    for e in stray_records(entries, now, label, what):
        try:
            if e.partial:
                remove_partial(target, e.name)
            else:
                target.remove(e.name)
        except TargetError as exc:
            gone = f" (deleted before it: {', '.join(done)})" if done else ""
            raise TargetError(f"could not delete the drill record {e.name}: {exc}{gone}") from exc
    return decisions

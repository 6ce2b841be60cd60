"""Retention by a GFS policy, with restic's meaning, computed from what the target holds.

The policy is pure: plan() sees only the backups (their UTC names and manifests) and the
time now; no state is kept anywhere else. Backups are grouped by (LABEL, WHAT, source: the
identity key its manifest records, see tiffin/sources/identity.py) and each group is pruned
on its own: two folders backed up under one label never prune each other's backups.
Manifests written before identities were recorded form a group of their own. Within a
group, newest first:

- `--keep-last N` keeps the N newest complete backups;
- `--keep-hourly/daily/weekly/monthly/yearly N` keeps, for each of the last N hours, days,
  ISO weeks, months or years that hold a complete backup, the newest backup of that period;
  when a group has fewer such periods than N, its oldest backup is kept too (restic >= 0.14);
- the newest complete backup of a group is always kept, whatever the policy says.

Only complete backups (those with a manifest) count toward the policy. Incomplete leftovers
(no manifest, NAME.partial, an abandoned upload) are removed once they are 24 hours old, by
their last write when the target reports one, else by their name; younger ones are kept, as
a backup may still be writing them. A damaged backup (an unreadable manifest, or chunks that
do not make a whole) is never touched.

Deleting a complete backup removes its manifest first and then its bytes, so that a deletion
cut short leaves an incomplete backup (which a later prune removes), never a manifest that
vouches for missing bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tiffin.catalog.backup import COMPLETE, DAMAGED, PARTIAL, Backup, kind_of
from tiffin.catalog.naming import DRILL_SUFFIX, MANIFEST_SUFFIX, parse_name
from tiffin.errors import UsageError
from tiffin.job import Retention
from tiffin.targets.base import Entry

LEFTOVER_AGE = timedelta(hours=24)


Key = tuple[int, ...]
# restic's buckets: (rule, the period of a time, how that period reads).
PERIODS: tuple[tuple[str, Callable[[datetime], Key], Callable[..., str]], ...] = (
    ("hourly", lambda t: (t.year, t.month, t.day, t.hour), "{:04d}-{:02d}-{:02d} {:02d}:00".format),
    ("daily", lambda t: (t.year, t.month, t.day), "{:04d}-{:02d}-{:02d}".format),
    ("weekly", lambda t: tuple(t.isocalendar())[:2], "{:04d}-W{:02d}".format),
    ("monthly", lambda t: (t.year, t.month), "{:04d}-{:02d}".format),
    ("yearly", lambda t: (t.year,), "{:04d}".format),
)


@dataclass(frozen=True)
class Decision:
    """Whether a backup stays, and every rule that keeps it (or why it goes)."""

    backup: Backup
    keep: bool
    reasons: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.backup.name

    def line(self, dry_run: bool) -> str:
        """Return the report line: 'keep NAME: daily 2026-11-27, ...' or 'delete NAME: ...'."""
        if self.keep:
            return f"keep {self.name}: {', '.join(self.reasons)}"
        verb = "would delete" if dry_run else "deleted"
        return f"{verb} {self.name}: {', '.join(self.reasons)}"


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 48:
        return f"{max(hours, 0):.0f} hours old"
    return f"{hours / 24:.0f} days old"


def _rules(group: Sequence[Backup], retention: Retention) -> dict[str, list[str]]:
    """Given one group's complete backups, newest first, return {name: reasons kept}."""
    kept: dict[str, list[str]] = {}
    for n, b in enumerate(group[: retention.last]):
        kept.setdefault(b.name, []).append(f"last #{n + 1}")
    for rule, period, show in PERIODS:
        left = int(getattr(retention, rule))
        last: Key | None = None
        for i, b in enumerate(group):
            if left <= 0:
                break
            key = period(b.created)
            if key != last:
                kept.setdefault(b.name, []).append(f"{rule} {show(*key)}")
                left -= 1
                last = key
            elif i == len(group) - 1:
                # Fewer periods than asked for: the oldest backup stays too, as restic does.
                kept.setdefault(b.name, []).append(f"oldest ({rule} {show(*key)})")
                left -= 1
    if group and group[0].name not in kept:
        kept[group[0].name] = ["newest"]
    return kept


def require(retention: Retention) -> None:
    """Raise UsageError unless RETENTION keeps something (at least one --keep-* above 0)."""
    if not retention.any():
        raise UsageError(
            "say what to keep: --keep-last, --keep-hourly, --keep-daily, --keep-weekly, "
            "--keep-monthly or --keep-yearly N"
        )


def plan(backups: Iterable[Backup], retention: Retention, now: datetime) -> list[Decision]:
    """Given the backups of a target, a retention policy and the time now, return one
    Decision per backup, newest first: what stays (and by which rules) and what goes. Pure:
    no I/O. Raise UsageError if the policy keeps nothing (no --keep-* given)."""
    require(retention)
    ordered = sorted(backups, key=lambda b: (b.created, b.name), reverse=True)
    groups: dict[tuple[str, str, str | None], list[Backup]] = {}
    for b in ordered:
        if b.complete:
            groups.setdefault((b.label, b.what, b.source), []).append(b)
    kept: dict[str, list[str]] = {}
    for group in groups.values():
        kept.update(_rules(group, retention))
    decisions: list[Decision] = []
    for b in ordered:
        if b.state == COMPLETE:
            reasons = kept.get(b.name)
            decisions.append(Decision(b, bool(reasons), tuple(reasons or ["no rule keeps it"])))
        elif b.state == DAMAGED:
            decisions.append(
                Decision(b, True, ("damaged (see tiffin verify): left for you to inspect",))
            )
        else:
            age = now - (b.modified or b.created)
            what = "partial upload" if b.state == PARTIAL else "incomplete (no manifest)"
            if age < LEFTOVER_AGE:
                decisions.append(Decision(b, True, (f"{what}, {_age(age)}: may still be running",)))
            else:
                decisions.append(Decision(b, False, (f"{what}, {_age(age)}",)))
    return decisions


def stray_records(
    entries: Sequence[Entry], now: datetime, label: str | None, what: str | None
) -> list[Entry]:
    """Given what a target lists, return the drill records (of LABEL and WHAT's kind, when
    given) to remove: those whose backup is gone, and leftover temporaries of one, once
    LEFTOVER_AGE old (as NAME.drill.json listed partial). Pure."""
    present = {e.name for e in entries if not e.name.endswith(DRILL_SUFFIX)}
    stray: list[Entry] = []
    for e in entries:
        base = e.name[: -len(DRILL_SUFFIX)] if e.name.endswith(DRILL_SUFFIX) else ""
        parsed = parse_name(base)
        if parsed is None or label not in (None, parsed.label):
            continue
        if what is not None and parsed.kind != kind_of(what):
            continue
        if e.partial:
            if e.mtime is not None and now - datetime.fromtimestamp(e.mtime, UTC) >= LEFTOVER_AGE:
                stray.append(e)
        elif base not in present and base + MANIFEST_SUFFIX not in present:
            stray.append(e)
    return stray


def summary(decisions: Sequence[Decision], dry_run: bool) -> str:
    """Given the decisions of a prune, return its last line."""
    gone = sum(not d.keep for d in decisions)
    kept = len(decisions) - gone
    if dry_run:
        return f"Would delete {gone} and keep {kept} backups; nothing was deleted (--dry-run)."
    return f"Deleted {gone} and kept {kept} backups."


def matches(b: Backup, label: str | None, what: str | None, source: str | None = None) -> bool:
    """Whether B belongs to LABEL, WHAT and the source of identity key SOURCE (None: any).
    An incomplete backup, whose WHAT only its name tells (sql for both mysql and pgsql) and
    whose source nothing tells, matches on its name."""
    if label is not None and b.label != label:
        return False
    if source is not None and b.complete and b.source != source:
        return False
    if what is None or what in (b.what, kind_of(b.what)):
        return True
    return not b.complete and b.what == kind_of(what)

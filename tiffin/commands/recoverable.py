"""What list, verify, prune and status add for base backups and their WAL archive (SPEC §6
"Around both"): the window recovery reaches, the archived WAL a base backup needs re-read,
and the WAL no kept base backup needs removed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from tiffin.catalog import pitr
from tiffin.catalog.backup import Backup
from tiffin.catalog.watch import Shelf, Wanted, Window
from tiffin.commands.inventory import Verdict
from tiffin.engine import walview
from tiffin.errors import TiffinError
from tiffin.job import TargetOptions, TargetURL


def bases_by_label(items: Iterable[Backup]) -> dict[str, list[pitr.Base]]:
    """Given backups with their manifests read, return each label's complete base backups."""
    found: dict[str, list[pitr.Base]] = {}
    for b in items:
        base = pitr.base_of(b)
        if base is not None:
            found.setdefault(base.label, []).append(base)
    return found


def window_lines(url: TargetURL, options: TargetOptions, items: Iterable[Backup]) -> list[str]:
    """Return list's lines of each label's recoverable window."""
    lines = []
    for label, bases in sorted(bases_by_label(items).items()):
        try:
            span = walview.window_of(url, options, label, bases)
        except TiffinError as exc:
            lines.append(f"{label}: the WAL archive cannot be read: {exc}")
            continue
        if span is not None:
            lines.append(
                f"{label}: recoverable from {pitr.shown(span[0])} to {pitr.shown(span[1])}"
            )
    return lines


def status_window(
    url: TargetURL, options: TargetOptions
) -> Callable[[Shelf, Wanted], Window | None]:
    """Return what gives status the window of a job of base backups (None for other jobs)."""

    def window(shelf: Shelf, w: Wanted) -> Window | None:
        if w.kind != "pgbase":
            return None
        items = []
        for b in shelf.items:
            if b.label == w.label and b.kind == "pgbase" and b.complete:
                m, _ = shelf.manifest(b.name)
                items.append(replace(b, manifest=m))
        bases = bases_by_label(items).get(w.label, [])
        span = walview.window_of(url, options, w.label, bases)
        return Window(span[0], span[1]) if span else None

    return window


def with_wal(url: TargetURL, options: TargetOptions, item: Backup, verdict: Verdict) -> Verdict:
    """Given a base backup whose bytes verified, return its verdict with its WAL checked."""
    base = pitr.base_of(item)
    if not verdict.ok or base is None:
        return verdict
    try:
        problem, checked = walview.check_wal(url, options, base)
    except TiffinError as exc:
        problem, checked = f"its WAL archive cannot be read: {exc}", ""
    if problem:
        return Verdict(verdict.name, "FAILED", verdict.size, verdict.sha256, problem)
    note = f"{verdict.reason}; {checked}" if verdict.reason else checked
    return Verdict(verdict.name, "OK", verdict.size, verdict.sha256, note)

"""What a label's WAL archive holds, read from its target: the names with their push times,
the history recovery follows, and the time of the last transaction in a segment."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime

from tiffin.catalog import pitr, walnames
from tiffin.catalog.backup import COMPLETE, DAMAGED
from tiffin.catalog.holdings import survey
from tiffin.catalog.walnames import Timeline
from tiffin.engine import archive, process
from tiffin.errors import BackupFailed, IntegrityError, NotFound
from tiffin.job import TargetOptions, TargetURL
from tiffin.sources.pgclients import client_versions
from tiffin.targets import Target, connected

# pg_waldump's description of a commit: "COMMIT 2026-12-07 14:20:01.123456 UTC".
_COMMIT = re.compile(r"desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC")
_LSN = re.compile(r"\blsn: ([0-9A-F]+/[0-9A-F]+),")
HISTORY_MAX = 1 << 20  # a history file is a line per timeline
LOOK_BACK = 8  # segments searched, newest first, for the last transaction


@dataclass(frozen=True)
class ArchiveView:
    """A WAL archive as listed: every WAL name with its push time (Unix seconds, None when
    the target gives none), and the history of its newest timeline, oldest first."""

    names: dict[str, float | None]
    history: list[Timeline]

    def __bool__(self) -> bool:
        return bool(self.names)


def _read_small(target: Target, name: str) -> bytes:
    got = bytearray()

    def keep(data: bytes) -> None:
        if len(got) + len(data) > HISTORY_MAX:
            raise BackupFailed(f"the archived {name} is larger than any history file")
        got.extend(data)

    archive.fetch_to(target, name, keep)
    return bytes(got)


def view(target: Target) -> ArchiveView:
    """Given the target of a WAL archive (archive.folder), return what it holds. Raise
    BackupFailed if its newest history file is not one."""
    names = {a.name: a.mtime for a in archive.listing(target)}
    tli = walnames.newest_timeline(names)
    history = walnames.first_timeline(tli or 1)
    if tli and tli > 1 and walnames.history_name(tli) in names:
        text = _read_small(target, walnames.history_name(tli)).decode("utf-8", "replace")
        try:
            history = walnames.parse_history(tli, text)
        except ValueError as exc:
            raise BackupFailed(f"the WAL archive's history is damaged: {exc}") from None
    return ArchiveView(names, history)


def waldump(major: int) -> str:
    """Return the pg_waldump of MAJOR (else the newest). Raise BackupFailed if none."""
    tools = client_versions("pg_waldump")
    tool = tools.get(major) or (tools[max(tools)] if tools else None)
    if tool is None:
        raise BackupFailed(f"pg_waldump is not installed: install postgresql-{major}")
    return tool


def last_records(tool: str, folder: str, name: str) -> tuple[datetime | None, int | None]:
    """Given pg_waldump, a folder and a segment in it, return the time of the last commit in
    the segment and the LSN of its last record (None for either if it holds none)."""
    child = process.Child((tool, "--path", folder, name), name="pg_waldump", env={"TZ": "UTC"})
    assert child.proc.stdout is not None
    commit: str | None = None
    lsn: str | None = None
    for raw in child.proc.stdout:
        line = raw.decode("utf-8", "replace")
        m = _LSN.search(line)
        if m:
            lsn = m.group(1)
        m = _COMMIT.search(line)
        if m:
            commit = m.group(1)
    child.wait()  # it ends with an error at the segment's end: expected
    when = None
    if commit:
        fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in commit else "%Y-%m-%d %H:%M:%S"
        when = datetime.strptime(commit, fmt).replace(tzinfo=UTC)
    return when, walnames.parse_lsn(lsn) if lsn else None


def last_commit(target: Target, segments: list[str], major: int) -> datetime | None:
    """Given the archive's target, the segments of a chain (oldest first) and the server's
    major version, return the time of the last transaction committed in the newest of them
    that holds one (up to LOOK_BACK tried), read with pg_waldump; None if none holds one."""
    tool = waldump(major)
    work = tempfile.mkdtemp(prefix="tiffin-wal-")
    try:
        for name in reversed(segments[-LOOK_BACK:]):
            path = os.path.join(work, name)
            try:
                archive.fetch(target, name, path)
            except NotFound:
                continue
            when, _ = last_records(tool, work, name)
            os.unlink(path)
            if when is not None:
                return when
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def window_of(
    url: TargetURL, options: TargetOptions, label: str, bases: list[pitr.Base]
) -> tuple[datetime, datetime] | None:
    """Given a target, a label and its complete base backups, return the window its WAL
    archive lets recovery reach (SPEC §6 "Around both"), or None without base backups."""
    if not bases:
        return None
    with connected(archive.folder(url, label), options) as arch:
        seen = view(arch)
    return pitr.window(bases, seen.names, seen.history)


def check_wal(url: TargetURL, options: TargetOptions, base: pitr.Base) -> tuple[str, str]:
    """Given a target and one of its base backups, re-read every archived WAL file recovery
    from it reads (to the newest file of the newest timeline) against its sha256, and check
    that chain has no gap. Return ('', what was checked), or (the problem, '')."""
    with connected(archive.folder(url, base.label), options) as arch:
        seen = view(arch)
        got = pitr.reach(base, seen.names, seen.history)
        if got.gap is not None:
            return f"the WAL archive has a gap: {got.gap} is missing after {base.name}", ""
        seg = base.seg_size
        needed = [
            n
            for n in walnames.chain(base.start_lsn, got.last_segno * seg, seen.history, seg)
            if n in seen.names
        ]
        needed += [walnames.history_name(t.tli) for t in seen.history if t.tli > 1]
        for name in needed:
            try:
                archive.fetch_to(arch, name, _discard)
            except NotFound:
                return f"the archived {name} is missing", ""
            except IntegrityError as exc:
                return f"the archived {name} does not check: {exc}", ""
    end = got.last or "its own WAL"
    return "", f"{len(needed)} archived WAL files re-read, unbroken to {end}"


def _discard(data: bytes) -> None:
    pass


def prune_wal(
    url: TargetURL, options: TargetOptions, label: str, kept: list[pitr.Base], dry_run: bool
) -> list[str]:
    """Given a target, a label and the base backups of it that stay, delete (unless DRY_RUN)
    the archived WAL files none of them needs; return their names. Nothing goes when no base
    backup stays: an archive without one is pruned by no rule."""
    if not kept:
        return []
    with connected(archive.folder(url, label), options) as arch:
        names = [a.name for a in archive.listing(arch)]
        starts = [(b.tli, b.start_lsn) for b in kept]
        seg = kept[0].seg_size
        gone = walnames.prunable(names, starts, seg)
        if not dry_run:
            for name in gone:
                archive.remove(arch, name)
    return gone


def prune_after(
    url: TargetURL,
    options: TargetOptions,
    target: Target,
    gone: set[str],
    label: str | None,
    dry_run: bool,
) -> list[str]:
    """After a prune that deleted (or, with DRY_RUN, would delete) the backups GONE, remove
    each label's archived WAL that no base backup left needs. Return the report lines. A
    label with a base backup whose manifest cannot be read keeps all its WAL."""
    items = [b for b in survey(target) if b.kind == "pgbase" and b.name not in gone]
    lines = []
    by_label: dict[str, list[pitr.Base]] = {}
    for b in items:
        base = pitr.base_of(b)
        if base is not None:
            by_label.setdefault(base.label, []).append(base)
    for name, bases in sorted(by_label.items()):
        if label is not None and name != label:
            continue
        unsure = [
            b
            for b in items
            if b.label == name and b.state in (COMPLETE, DAMAGED) and pitr.base_of(b) is None
        ]
        if unsure:
            lines.append(f"kept all WAL of {name}: {unsure[0].name} cannot be read")
            continue
        removed = prune_wal(url, options, name, bases, dry_run)
        if removed:
            verb = "would delete" if dry_run else "deleted"
            lines.append(
                f"{verb} {len(removed)} WAL files of {name} that no kept base backup needs "
                f"({removed[0]} to {removed[-1]})"
            )
    return lines

"""What a label's WAL archive holds, read from its target: the names with their push times,
the history recovery follows, and the time of the last transaction in a segment."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime

from tiffin.catalog import walnames
from tiffin.catalog.walnames import Timeline
from tiffin.engine import archive, process
from tiffin.errors import BackupFailed, NotFound
from tiffin.sources.pgclients import client_versions
from tiffin.targets import Target

# pg_waldump's description of a commit: "COMMIT 2026-12-07 14:20:01.123456 UTC".
_COMMIT = re.compile(r"desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC")
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


def last_commit(target: Target, segments: list[str], major: int) -> datetime | None:
    """Given the archive's target, the segments of a chain (oldest first) and the server's
    major version, return the time of the last transaction committed in the newest of them
    that holds one (up to LOOK_BACK tried), read with pg_waldump; None if none holds one."""
    tools = client_versions("pg_waldump")
    tool = tools.get(major) or (tools[max(tools)] if tools else None)
    if tool is None:
        raise BackupFailed(f"pg_waldump is not installed: install postgresql-{major}")
    work = tempfile.mkdtemp(prefix="tiffin-wal-")
    try:
        for name in reversed(segments[-LOOK_BACK:]):
            path = os.path.join(work, name)
            try:
                archive.fetch(target, name, path)
            except NotFound:
                continue
            child = process.Child(
                (tool, "--path", work, name), name="pg_waldump", env={"TZ": "UTC"}
            )
            assert child.proc.stdout is not None
            found = None
            for line in child.proc.stdout:
                m = _COMMIT.search(line.decode("utf-8", "replace"))
                if m:
                    found = m.group(1)
            child.wait()  # it ends with an error at the segment's end: expected
            os.unlink(path)
            if found:
                fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in found else "%Y-%m-%d %H:%M:%S"
                return datetime.strptime(found, fmt).replace(tzinfo=UTC)
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)

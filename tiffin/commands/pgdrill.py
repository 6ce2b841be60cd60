"""drill --physical: recover a base backup and its archived WAL in a throwaway server
(tiffin.engine.scratch.pgrecover: its own folder, a private socket, no TCP, jailed), check
every database and table recorded at backup time, and remove it all.

The server replays the archive to its end: every segment from the base backup's start along
the newest timeline, each fetched and checked against its sha256 before it goes into the
scratch pg_wal. A gap in that chain fails the drill, as it would fail a recovery.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from tiffin.catalog import pitr, walnames
from tiffin.catalog.backup import Backup
from tiffin.catalog.manifest import Manifest
from tiffin.catalog.naming import parse_name
from tiffin.commands.drillsql import pg_counts
from tiffin.engine import archive, walview
from tiffin.engine.scratch.pgrecover import ScratchRecovery
from tiffin.engine.streams import Reader
from tiffin.errors import BackupFailed
from tiffin.job import TargetOptions, TargetURL
from tiffin.sources.untar import SafeExtractor
from tiffin.targets import connected

Checked = tuple[list[str], list[str], str]
Check = Callable[[Mapping[str, Any], Mapping[str, dict[str, int] | None]], Checked]
# A base backup records no row counts (they would not match its moment): tables are checked.
NO_COUNTS = "the manifest records no row counts: only tables were checked"


def base_from(manifest: Manifest) -> pitr.Base:
    """Given a base backup's manifest, return it as a base backup. Raise BackupFailed if the
    manifest lacks what recovery needs."""
    parsed = parse_name(manifest.name)
    created = parsed.created if parsed else None
    assert created is not None
    base = pitr.base_of(Backup(manifest.name, manifest.label, "pgbase", created, manifest=manifest))
    if base is None:
        raise BackupFailed("its manifest lacks the start and stop of the base backup")
    return base


def drill(
    url: TargetURL, options: TargetOptions, stream: Reader, manifest: Manifest, check: Check
) -> Checked:
    """Given the target, the decoded stream of its base backup, its manifest and the
    drill's table check (drill.check_tables), recover it in a scratch server and return
    (problems, warnings, summary)."""
    details = manifest.source
    base = base_from(manifest)
    major = int(str(details.get("server_version", "15")).split(".")[0].split(" ")[0] or 15)
    with connected(archive.folder(url, base.label), options) as arch:
        seen = walview.view(arch)
        got = pitr.reach(base, seen.names, seen.history)
        if got.gap is not None:
            return [f"the WAL archive has a gap: {got.gap} is missing after {base.name}"], [], ""
        seg = base.seg_size
        chain = walnames.chain(base.start_lsn, got.last_segno * seg, seen.history, seg)
        wanted = [n for n in chain if n in seen.names]
        wanted += [walnames.history_name(t.tli) for t in seen.history if t.tli > 1]
        end = [base.stop_lsn - 1]

        def fill(data: str) -> None:
            SafeExtractor(data).extract(stream)
            wal = os.path.join(data, "pg_wal")
            for name in wanted:
                archive.fetch(arch, name, os.path.join(wal, name))
            last = chain[-1]
            if os.path.exists(os.path.join(wal, last)):
                _, lsn = walview.last_records(walview.waldump(major), wal, last)
                if lsn is not None:
                    end[0] = max(end[0], lsn)

        server = ScratchRecovery(major, fill, str(details.get("superuser") or "postgres"))
        with server:
            server.promote_after(end[0])
            dbs = dict.fromkeys([*details.get("databases", []), *(details.get("tables") or {})])
            problems, warnings, summary = check(
                details, {db: pg_counts(server.conn, db) for db in dbs}
            )
    warnings = [*server.weaknesses(), *(w for w in warnings if w != NO_COUNTS)]
    reached = walnames.format_lsn(end[0])
    return problems, warnings, f"{summary}, recovered to {reached} ({len(wanted)} WAL files)"

"""PostgreSQL base backups: `pgsql --physical` streams `pg_basebackup -D - -Ft -X fetch`.

One tar on stdout holds the whole cluster, the WAL that makes it consistent (`-X fetch`;
`-X stream` cannot write to stdout) and PostgreSQL's own backup_manifest, which
pg_verifybackup checks a restored copy against. The facts the manifest records (system
identifier, timeline, start and stop LSN and times) are read from that tar as it passes
(tiffin/sources/basetar.py): no temp copy, no second connection during the backup.
"""

from __future__ import annotations

import os
from typing import Any

from tiffin.engine import process
from tiffin.engine.streams import Reader
from tiffin.errors import BackupFailed
from tiffin.job import RestoreJob, SourceSpec
from tiffin.sources.basetar import BaseFacts, BaseTarReader, facts
from tiffin.sources.pgclients import client_versions, newest_psql, pick_client, pick_major
from tiffin.sources.postgresql import _psql, pg_env, server_of
from tiffin.sources.untar import SafeExtractor


def basebackup_command(tool: str, label: str) -> tuple[str, ...]:
    """Given the pg_basebackup to run and the label PostgreSQL records for the backup, return
    the command that writes the base backup as one tar on stdout. A fast checkpoint starts
    it at once, as a user running a backup expects (a spread one may wait minutes)."""
    return (tool, "-D", "-", "-F", "t", "-X", "fetch", "-c", "fast", "-w", "-l", label)


class _Checked:
    """Hands on a BaseTarReader's bytes and, at their end, reads the facts: a stream that
    ends without them fails there, so that the target publishes nothing."""

    def __init__(self, inner: BaseTarReader) -> None:
        self.inner = inner
        self.facts: BaseFacts | None = None

    def read(self, size: int = -1, /) -> bytes:
        data = self.inner.read(size)
        if not data and self.facts is None:
            try:
                self.facts = facts(self.inner)
            except ValueError as exc:
                raise BackupFailed(f"pg_basebackup's tar is not whole: {exc}") from None
        return data

    def close(self) -> None:
        self.inner.close()


class PgBaseSource:
    what = "pgbase"

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self._psql = newest_psql()
        self._tool = "pg_basebackup"
        self._stream: _Checked | None = None
        self._child: process.Child | None = None
        self._warnings: list[str] = []

    def prepare(self) -> dict[str, Any]:
        """Read the server's version, archive_mode and its databases and their tables (what
        drill checks a recovered copy against), and pick the matching pg_basebackup."""
        conn = self.spec.conn
        head, *names = _psql(
            conn,
            "postgres",
            "SELECT current_setting('server_version_num'), current_setting('server_version'), "
            "current_setting('archive_mode'), current_setting('wal_level'), "
            "(SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'), "
            "(SELECT rolname FROM pg_roles WHERE oid = 10);\n"
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
            "ORDER BY 1;",
            self._psql,
        )
        major = int(head[0]) // 10000
        if head[3] == "minimal":
            raise BackupFailed(
                "the server runs with wal_level = minimal, which allows no base backup: "
                "set wal_level = replica and restart it"
            )
        if head[2] == "off":
            self._warnings.append(
                "archive_mode is off: this base backup restores to its own end only; set "
                "archive_mode = on and archive_command = 'tiffin wal-push ...' to recover "
                "to any later time"
            )
        dbs = [r[0] for r in names]
        tables: dict[str, list[str]] = {}
        for db in dbs:
            rows = _psql(
                conn,
                db,
                "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname "
                "NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE "
                "'pg\\_%temp\\_%' ORDER BY 1;",
                self._psql,
            )
            tables[db] = [r[0] for r in rows]
        self._tool = pick_client("pg_basebackup", major, client_versions("pg_basebackup"))
        return {
            "server": "pgbase",
            "server_version": head[1],
            "databases": dbs,
            "tables": tables,
            "roles": True,
            "consistency": "base backup (pg_basebackup, WAL fetched)",
            "dump_tool": f"pg_basebackup {pick_major(self._tool)}",
            "wal_segment_size": int(head[4]),
            "superuser": head[5],
        }

    def open(self) -> Reader:
        reader = process.spawn_reader(
            basebackup_command(self._tool, "tiffin"),
            name="pg_basebackup",
            env=pg_env(self.spec.conn, "postgres"),
            server=server_of(self.spec.conn, self._psql),
        )
        self._child = process.child_of(reader)
        self._stream = _Checked(BaseTarReader(reader))
        return self._stream

    def finish(self) -> dict[str, Any]:
        """Return the facts read from the stream (system identifier, timeline, LSNs, times)."""
        got = self._stream.facts if self._stream else None
        return got.details() if got else {}

    def warnings(self) -> list[str]:
        tool = []
        if self._child is not None:
            tool = [ln for ln in self._child.stderr_tail.splitlines() if "warning" in ln.lower()]
        return self._warnings + tool


class PgDataLoader:
    """Writes a base backup's files into an absent or empty data directory (restore --into
    pgdata --dir DATADIR); setting it up to recover is tiffin/commands/pgrestore.py's."""

    def __init__(self, job: RestoreJob) -> None:
        self.job = job
        self.dir = os.path.abspath(os.path.expanduser(job.source.dir))

    def check(self, details: dict[str, Any]) -> None:
        if details.get("server") != "pgbase":
            raise BackupFailed(
                "this backup is not a PostgreSQL base backup: --into pgdata takes one made "
                "with backup pgsql --physical"
            )
        try:
            held = os.listdir(self.dir)
        except FileNotFoundError:
            return
        except NotADirectoryError:
            raise BackupFailed(f"{self.dir} is not a directory") from None
        except OSError as exc:
            raise BackupFailed(f"cannot read {self.dir}: {exc.strerror or exc}") from None
        if held:
            raise BackupFailed(
                f"{self.dir} is not empty: a base backup is restored into an absent or empty "
                "data directory"
            )

    def load(self, reader: Reader, details: dict[str, Any]) -> str:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)
        files = SafeExtractor(self.dir, durable=True).extract(reader)
        return f"{files} files written to {self.dir}"

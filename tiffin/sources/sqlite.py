"""A live SQLite file, copied with SQLite's online backup API, and loaded back.

The copy is consistent while other processes write. In WAL mode the backup reads one
snapshot (a read transaction held across its steps), which never blocks writers. In
rollback-journal mode a reader blocks commits, so the backup copies a few pages at a time
and releases the lock in between; SQLite restarts it whenever a writer commits, and after a
few restarts it copies the whole file in one step (writers wait for that one copy).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from typing import Any
from urllib.parse import quote

from tiffin.engine.streams import Reader, copy
from tiffin.errors import BackupFailed, UsageError
from tiffin.job import RestoreJob, SourceSpec

HEADER = b"SQLite format 3\x00"
STEP_PAGES = 256
MAX_RESTARTS = 3
BUSY_TIMEOUT = 60.0
BUSY_SLEEP = 0.01
SIDECARS = ("-wal", "-shm", "-journal")


class _Restarted(Exception):
    """Raised from the progress callback to stop a backup that writers keep restarting."""


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Given a connection, return {table: row count} for its user tables (virtual tables whose
    module this SQLite lacks are left out)."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite\\_%' "
            "ESCAPE '\\' ORDER BY name"
        )
    ]
    counts: dict[str, int] = {}
    for name in names:
        query = f"SELECT count(*) FROM {_quote_ident(name)}"  # noqa: S608 - a quoted name
        with contextlib.suppress(sqlite3.OperationalError):
            counts[name] = int(conn.execute(query).fetchone()[0])
    return counts


def check_header(path: str) -> None:
    """Given a path, return None if it holds a SQLite database (or is empty, which SQLite
    reads as an empty database). Raise BackupFailed naming the file if it is missing,
    unreadable, or something else."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(HEADER))
    except FileNotFoundError:
        raise BackupFailed(f"the SQLite file {path} does not exist") from None
    except IsADirectoryError:
        raise BackupFailed(f"{path} is a directory, not a SQLite file") from None
    except OSError as exc:
        raise BackupFailed(f"cannot read the SQLite file {path}: {exc.strerror}") from None
    if head and head != HEADER:
        raise BackupFailed(f"{path} is not a SQLite database")


def _connect_ro(path: str) -> sqlite3.Connection:
    """Open PATH read-only, so that tiffin never writes to (or checkpoints) the live file."""
    uri = "file:" + quote(path, safe="/") + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None)


def _empty_copy(tmp: str) -> sqlite3.Connection:
    """Truncate TMP and return a connection to it, without a journal: a failed copy is
    thrown away, never rolled back."""
    os.truncate(tmp, 0)
    dst = sqlite3.connect(tmp, isolation_level=None)
    dst.execute("PRAGMA journal_mode=OFF")
    return dst


class SqliteSource:
    """A SQLite file (--file PATH), dumped as a plain database file."""

    what = "sqlite"

    def __init__(self, spec: SourceSpec) -> None:
        if not spec.file:
            raise UsageError("sqlite needs the database file: add --file PATH")
        self.path = os.path.abspath(os.path.expanduser(spec.file))
        self._details: dict[str, Any] = {}

    def prepare(self) -> dict[str, Any]:
        """Return the file's details: path, SQLite version, journal mode, {table: rows} and
        page count. Raise BackupFailed if the file is missing or not a SQLite database."""
        check_header(self.path)
        try:
            conn = _connect_ro(self.path)
            try:
                mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
                page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
                page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
                tables = table_counts(conn)
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise BackupFailed(f"cannot read the SQLite database {self.path}: {exc}") from None
        self._details = {
            "file": self.path,
            "sqlite_version": sqlite3.sqlite_version,
            "journal_mode": mode,
            "tables": tables,
            "page_count": page_count,
            "page_size": page_size,
        }
        return self._details

    def open(self) -> Reader:
        """Copy the database into a private temp file (0600) and return a reader of it. The
        file is unlinked as soon as it is open, so it vanishes when the reader is closed.
        The details returned by prepare() are updated in place with the copy's own row
        counts. Raise BackupFailed if SQLite cannot read the database."""
        if not self._details:
            self.prepare()
        fd, tmp = tempfile.mkstemp(prefix="tiffin-sqlite-", suffix=".db")
        os.close(fd)
        try:
            self._copy_to(tmp)
            reader = open(tmp, "rb")  # noqa: SIM115 - handed to the caller, who closes it
        finally:
            for suffix in ("", *SIDECARS):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp + suffix)
        return reader

    def _copy_to(self, tmp: str) -> None:
        try:
            src = _connect_ro(self.path)
            try:
                dst = self._backup(src, tmp)
                try:
                    # A self-contained file: no -wal beside it is needed to read it.
                    dst.execute("PRAGMA journal_mode=DELETE")
                    self._details["tables"] = table_counts(dst)
                    self._details["page_count"] = int(
                        dst.execute("PRAGMA page_count").fetchone()[0]
                    )
                finally:
                    dst.close()
            finally:
                src.close()
        except sqlite3.DatabaseError as exc:
            raise BackupFailed(f"the SQLite backup of {self.path} failed: {exc}") from None

    def _backup(self, src: sqlite3.Connection, tmp: str) -> sqlite3.Connection:
        """Copy SRC into the empty file TMP; return a connection to the copy."""
        dst = _empty_copy(tmp)
        if str(src.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            # One read transaction across all steps: a single snapshot, writers go on.
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchall()
            src.backup(dst, pages=STEP_PAGES)
            src.execute("COMMIT")
            self._details["consistency"] = "snapshot (WAL)"
            return dst
        last = [-1, 0]  # pages remaining after the previous step, restarts seen

        def progress(status: int, remaining: int, total: int) -> None:
            if status == sqlite3.SQLITE_OK and 0 <= last[0] <= remaining:
                last[1] += 1
                if last[1] > MAX_RESTARTS:
                    raise _Restarted
            last[0] = remaining

        try:
            src.backup(dst, pages=STEP_PAGES, progress=progress, sleep=BUSY_SLEEP)
            self._details["consistency"] = "stepped backup"
            return dst
        except _Restarted:
            dst.close()
        # Writers keep committing: copy it all under one shared lock instead.
        self._details["consistency"] = "one-step backup (writers kept committing)"
        dst = _empty_copy(tmp)
        src.backup(dst, pages=-1, sleep=BUSY_SLEEP)
        return dst

    def finish(self) -> dict[str, Any]:
        """Return no more details: the rows were counted on the copy, before it was read."""
        return {}

    def warnings(self) -> list[str]:
        """Return the non-fatal notes of the dump: none, a copy is whole or fails."""
        return []


class SqliteLoader:
    """restore --into sqlite --file DEST: writes DEST.partial, checks it, then renames it."""

    def __init__(self, job: RestoreJob) -> None:
        if not job.source.file:
            raise UsageError("restore --into sqlite needs the destination: add --file PATH")
        self.dest = os.path.abspath(os.path.expanduser(job.source.file))
        self.overwrite = job.overwrite

    def check(self, details: dict[str, Any]) -> None:
        """Given the backup's source details, return None if DEST can take it. Raise BackupFailed
        if DEST (or a journal of an earlier database beside it) exists without --overwrite."""
        if os.path.isdir(self.dest):
            raise BackupFailed(f"{self.dest} is a directory; give the database file with --file")
        if self.overwrite:
            return
        for suffix in ("", *SIDECARS):
            if os.path.lexists(self.dest + suffix):
                raise BackupFailed(f"{self.dest + suffix} exists; add --overwrite to replace it")

    def load(self, reader: Reader, details: dict[str, Any]) -> str:
        """Given a reader of a dumped database, write it to DEST and return a summary. Raise
        BackupFailed if it is not a sound SQLite database or DEST appeared meanwhile."""
        self.check(details)
        parent = os.path.dirname(self.dest)
        os.makedirs(parent, exist_ok=True)
        partial = self.dest + ".partial"
        for suffix in ("", *SIDECARS):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial + suffix)
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                copy(reader, out.write)
                out.flush()
                os.fsync(out.fileno())
            tables = self._verify(partial, str(details.get("journal_mode", "")))
            self._publish(partial)
        finally:
            for suffix in ("", *SIDECARS):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(partial + suffix)
        dfd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return f"restored {tables} table{'' if tables == 1 else 's'} into {self.dest}"

    def _verify(self, path: str, journal_mode: str) -> int:
        try:
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
                if result != ["ok"]:
                    raise BackupFailed(
                        "the restored SQLite database is damaged: "
                        + "; ".join(str(r) for r in result[:3])
                    )
                if journal_mode == "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                return len(table_counts(conn))
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise BackupFailed(f"the backup is not a sound SQLite database: {exc}") from None

    def _publish(self, partial: str) -> None:
        if self.overwrite:
            # A journal of the replaced database would be replayed into the new one.
            for suffix in SIDECARS:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.dest + suffix)
            os.replace(partial, self.dest)
            return
        try:
            os.link(partial, self.dest)
        except FileExistsError:
            raise BackupFailed(f"{self.dest} exists; add --overwrite to replace it") from None
        except OSError:
            # No hard links on this file system: a plain rename, after one more look.
            if os.path.lexists(self.dest):
                raise BackupFailed(f"{self.dest} exists; add --overwrite to replace it") from None
            os.rename(partial, self.dest)

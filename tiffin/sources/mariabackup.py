"""mysql --physical: a physical backup of a whole MariaDB server with mariabackup (SPEC §6).

`mariabackup --backup --stream=xbstream` writes the server's files as one xbstream on its
stdout, which the pipeline encodes and stores like any dump: no copy of the data is made
on this machine. mariabackup wants a --target-dir for its own bookkeeping even when it
streams; it gets an empty private temporary folder, which stays empty (checked at the
end) and is removed whatever happens.

mariabackup reads the server's data directory itself, so it runs on the server's machine:
the data directory the server reports must be here. Its login is the one the dumps use,
and its password reaches it the same way, never on a command line: in an option file it
reads as its first option. mariabackup reads its option files three times (the server's
groups, then the clients'), so that file is an anonymous memory file (memfd), which every
open reads from its start, not a pipe, which only the first would read.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from typing import Any

from tiffin.engine import process
from tiffin.engine.streams import Reader
from tiffin.errors import BackupFailed, TiffinError, ToolFailed
from tiffin.job import DBConn, SourceSpec
from tiffin.sources.beside import COUNTS_LOST, Beside
from tiffin.sources.mysql import MySQLSource, conn_options, option_value

TOOLS = ("mariabackup", "mariadb-backup")
PACKAGE = "mariadb-backup"
# What mariabackup may leave in its --target-dir while streaming: never a copy of the data.
BOOKKEEPING_MAX = 1 << 20
_POSITION = re.compile(
    r"MySQL binlog position: filename '([^'\n]{1,255})', position '(\d{1,20})'"
    r"(?:, GTID of the last change '([0-9,\- ]{0,4000})')?"
)
_GTID = re.compile(r"^\d+-\d+-\d+(,\d+-\d+-\d+)*\Z")


def tool() -> str:
    """Return mariabackup's path. Raise BackupFailed naming the package if it is missing."""
    found = process.which(*TOOLS)
    if not found:
        raise BackupFailed(f"mariabackup is not installed here: install {PACKAGE}")
    return found


def secret_file(password: str) -> int:
    """Given a password, return a descriptor of a 0600 anonymous memory file holding it as a
    [client] option file: /dev/fd/N opens it afresh, from its start, each time it is read."""
    fd = os.memfd_create("tiffin-mariabackup", os.MFD_CLOEXEC)
    try:
        os.fchmod(fd, 0o600)  # the clients ignore a world-writable option file
        body = "[client]\npassword=" + option_value(password) + "\n"
        os.write(fd, body.encode("utf-8", "surrogateescape"))
    except BaseException:
        os.close(fd)
        raise
    return fd


def backup_command(
    binary: str, conn: DBConn, target_dir: str, datadir: str, secret_fd: int | None
) -> tuple[str, ...]:
    """Given mariabackup, the connection, its bookkeeping folder, the server's data directory
    and the descriptor of the password's option file (None: no password), return the
    command that streams the backup on stdout."""
    first = (f"--defaults-extra-file=/dev/fd/{secret_fd}",) if secret_fd is not None else ()
    return (
        binary,
        *first,
        "--backup",
        "--stream=xbstream",
        f"--target-dir={target_dir}",
        f"--datadir={datadir}",
        *conn_options(conn),
    )


def binlog_position(lines: str) -> dict[str, Any]:
    """Given mariabackup's messages, return the binary log coordinates of its snapshot as it
    reports them ({file, position[, gtid]}), or {} when it reports none (logging off)."""
    found = None
    for m in _POSITION.finditer(lines):
        found = m
    if found is None:
        return {}
    coords: dict[str, Any] = {"file": found[1], "position": int(found[2])}
    gtid = (found[3] or "").replace(" ", "")
    if gtid and _GTID.match(gtid):
        coords["gtid"] = gtid
    return coords


def _size(folder: str) -> int:
    total = 0
    for top, _dirs, names in os.walk(folder):
        for n in names:
            try:
                total += os.lstat(os.path.join(top, n)).st_size
            except OSError:
                pass
    return total


class MariabackupSource(MySQLSource):
    """The whole server, as mariabackup streams it. Like a dump's, its manifest records the
    databases, tables and row counts drill checks a restored copy against: read in a session
    beside the stream (finish() waits for them), so that the stream starts after one short
    session only."""

    what = "mariabackup"

    def __init__(self, spec: SourceSpec) -> None:
        super().__init__(spec)
        self.backup_bin = ""
        self._datadir = ""
        self._bookkeeping = ""
        self._log_bin: dict[str, Any] = {}
        self._cleaning: _Cleaning | None = None
        self._physical: dict[str, Any] = {}
        self._catalog: Beside[tuple[dict[str, Any], str | None]] | None = None

    def prepare(self) -> dict[str, Any]:
        """Check that mariabackup can back this server up, start it (it connects and scans
        the data directory while the catalog is read beside it: its stream waits in its pipe
        until open()), and return what is known before the stream: the server, marked
        physical. finish() adds the databases, tables and row counts a dump's prepare gives."""
        self.backup_bin = tool()  # missing: before the server is contacted, nothing stored
        row = self._query(
            "SELECT @@datadir, @@log_bin, @@server_id, IFNULL(@@log_bin_basename, ''), VERSION()"
        )[0]
        datadir, log_bin, server_id, basename, version = row
        if "mariadb" not in version.lower():
            raise BackupFailed(
                f"the server is not MariaDB ({version}): mariabackup backs up MariaDB only"
            )
        if not os.path.isdir(datadir):
            raise BackupFailed(
                f"the server's data directory {datadir} is not on this machine: mariabackup "
                "reads the server's files, so run the backup on the server's machine"
            )
        self._datadir = datadir
        if log_bin == "1":
            self._log_bin = {"server_id": int(server_id), "basename": os.path.basename(basename)}
        self._start()
        self._catalog = Beside(self._read_catalog, "tiffin-mariabackup-catalog")
        self._physical = {
            "consistency": "physical",
            "physical": "mariabackup",
            "dump_tool": os.path.basename(self.backup_bin),
        }
        return {"server": "mysql", "server_version": version, **self._physical}

    def _binlog_status(self, row: list[str]) -> dict[str, Any] | None:
        return None  # mariabackup reports its snapshot's coordinates itself (finish)

    def _read_catalog(self) -> tuple[dict[str, Any], str | None]:
        """Return a dump's details of the server (databases, tables, estimates) with the
        exact row counts it plans, and why the counts could not be taken (None: they were).
        Raise TiffinError if the details cannot be read."""
        details = MySQLSource.prepare(self)
        if self.spec.counts != "exact":
            return details, None
        try:
            return {**details, "rows": self._count(self._exact)}, None
        except (TiffinError, OSError) as exc:
            return details, str(exc)

    def _start(self) -> None:
        self._bookkeeping = tempfile.mkdtemp(prefix="tiffin-mariabackup-")
        atexit.register(shutil.rmtree, self._bookkeeping, True)  # a run that fails before open()
        fd = secret_file(self.spec.conn.password) if self.spec.conn.password is not None else None
        cmd = backup_command(self.backup_bin, self.spec.conn, self._bookkeeping, self._datadir, fd)
        reader = process.spawn_reader(
            cmd,
            name="mariabackup",
            pass_fds=[fd] if fd is not None else [],
            server=self.server,
            keep=("binlog position", "[ERROR]", "Error:", "failed"),
        )
        self._child = process.child_of(reader)
        self._cleaning = _Cleaning(self._child, reader, self._bookkeeping)

    def open(self) -> Reader:
        assert self._cleaning is not None, "open() before prepare()"
        return self._cleaning

    def finish(self) -> dict[str, Any]:
        """Return the catalog and row counts read beside the backup and the binary log
        coordinates mariabackup reported for its snapshot. Raise BackupFailed if the catalog
        could not be read (the manifest would not say what drill is to check)."""
        assert self._catalog is not None, "finish() before prepare()"
        if self._cleaning is not None:
            self._cleaning.close()
            if self._cleaning.left > BOOKKEEPING_MAX:
                self._late.append(
                    f"mariabackup left {self._cleaning.left:,} bytes in its temporary folder "
                    "while streaming (removed)"
                )
        read, error = self._catalog.join()
        if read is None:
            why = error or "the session ended without an answer"
            raise BackupFailed(f"the server's databases and tables could not be read: {why}")
        found, lost = read
        if lost is not None:
            self._late.append(f"{COUNTS_LOST}: {lost}")
        found = {**found, **self._physical}
        lines = "\n".join(self._child.error_lines) if self._child is not None else ""
        coords = binlog_position(lines)
        if coords and self._log_bin:
            found["binlog"] = {**coords, **self._log_bin}
        elif self._log_bin:
            self._late.append("mariabackup reported no binary log coordinates")
        return found

    def warnings(self) -> list[str]:
        return list(self._late)


_STAMP = re.compile(r"^(\[\d+\] )?(FATAL ERROR: )?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d )?(\d+ )?")


def reason(lines: list[str], tail: str) -> str:
    """Given mariabackup's error lines and its last lines, return why it failed: its last
    error line without the thread and time stamps, else its last line."""
    errors = [ln for ln in lines if "error" in ln.lower() or "failed" in ln.lower()]
    last = (errors or tail.splitlines() or ["no message"])[-1].strip()
    return _STAMP.sub("", last).strip() or last


class _Cleaning:
    """A reader of mariabackup's stream that says in one line why it failed, and removes its
    bookkeeping folder when closed."""

    def __init__(self, child: process.Child, inner: Reader, folder: str) -> None:
        self.child = child
        self.inner = inner
        self.folder = folder
        self.left = 0  # the bytes mariabackup left in it, measured before it is removed

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self.inner.read(size)
        except ToolFailed as exc:
            why = reason(list(self.child.error_lines), self.child.stderr_tail)
            raise ToolFailed("mariabackup", exc.returncode, why) from None

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            if os.path.isdir(self.folder):
                self.left = _size(self.folder)
                shutil.rmtree(self.folder, ignore_errors=True)

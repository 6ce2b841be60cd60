"""A MySQL/MariaDB server's binary logs, as a client sees them: list, rotate, fetch.

A closed log is fetched over the replication protocol (`mariadb-binlog
--read-from-remote-server --raw`), which writes only to files named after the log: tiffin
gives it a named pipe of that name in a private spool folder (mode 0700) and streams what
comes out of it, so no copy of the log is kept on this machine's disk. The password reaches
mariadb-binlog as it reaches every client: an inherited pipe read as its first option.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from typing import IO

from tiffin.engine import process
from tiffin.errors import BackupFailed, IntegrityError
from tiffin.job import DBConn
from tiffin.sources.mysql import server_of, with_secret

OPEN_WAIT = 0.1  # seconds between looks at a fetch that has not opened its pipe yet


class BinlogServer:
    """One server's binary logs. close() removes the spool folder."""

    def __init__(self, conn: DBConn) -> None:
        self.conn = conn
        self.client_bin = process.which("mariadb", "mysql") or "mysql"
        self.binlog_bin = process.which("mariadb-binlog", "mysqlbinlog") or "mysqlbinlog"
        self.server = server_of(self.client_bin, conn)
        self.spool = tempfile.mkdtemp(prefix="tiffin-binlog-")  # 0700

    def close(self) -> None:
        shutil.rmtree(self.spool, ignore_errors=True)

    def query(self, sql: str) -> list[list[str]]:
        cmd, fds = with_secret(self.client_bin, self.conn, ("-N", "-B", "-e", sql))
        out = process.run(cmd, name="mysql", pass_fds=fds, server=self.server)
        return [line.split("\t") for line in out.split("\n") if line]

    def logs(self) -> list[tuple[str, int]]:
        """Return the server's binary logs, oldest first, with their sizes; the last one is
        the log being written. Raise BackupFailed if binary logging is off."""
        if self.query("SELECT @@log_bin")[0][0] != "1":
            raise BackupFailed(
                "binary logging is off on this server: set log_bin (and server_id) in its "
                "configuration and restart it"
            )
        return [(row[0], int(row[1])) for row in self.query("SHOW BINARY LOGS")]

    def position(self) -> tuple[str, int]:
        """Return the log being written and how far."""
        row = self.query("SHOW MASTER STATUS")[0]
        return row[0], int(row[1])

    def rotate(self) -> None:
        """Close the log being written and open the next (FLUSH BINARY LOGS)."""
        self.query("FLUSH BINARY LOGS")

    def fetch(self, log: str) -> FetchedLog:
        """Given the name of a closed log (a plain name: see catalog.binlogs.split_log),
        return a reader of its bytes that raises ToolFailed (or Stalled) instead of EOF if
        the fetch did not end well."""
        path = os.path.join(self.spool, log)
        if os.path.lexists(path):
            os.unlink(path)
        os.mkfifo(path, 0o600)
        args = ("--read-from-remote-server", "--raw", f"--result-file={self.spool}/", log)
        cmd, fds = with_secret(self.binlog_bin, self.conn, args)
        child = process.Child(
            cmd, name="mariadb-binlog", pass_fds=fds, stdout=subprocess.DEVNULL, server=self.server
        )
        return FetchedLog(child, path)


class FetchedLog:
    """A reader of the named pipe a mariadb-binlog child writes one log into."""

    def __init__(self, child: process.Child, path: str) -> None:
        self.child = child
        self.path = path
        self._pipe: IO[bytes] | None = None
        self._done = False

    def _open(self) -> IO[bytes]:
        """Open the pipe for reading; if the child ends without opening it (refused, no such
        log), open its other end ourselves so the wait ends, and raise the child's error."""
        got: list[IO[bytes]] = []
        # The pipe outlives this call: FetchedLog.close() closes it.
        opener = threading.Thread(target=lambda: got.append(open(self.path, "rb", buffering=0)))  # noqa: SIM115
        opener.start()
        while opener.is_alive():
            opener.join(OPEN_WAIT)
            if opener.is_alive() and self.child.proc.poll() is not None:
                try:
                    os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:  # ENXIO: the opener is not waiting in open() yet
                    continue
                opener.join()
        pipe = got[0]
        if self.child.proc.poll() is not None and self.child.proc.returncode != 0:
            pipe.close()
            self.child.check()
        return pipe

    def read(self, size: int = -1, /) -> bytes:
        if self._done:
            return b""
        if self._pipe is None:
            self._pipe = self._open()
        data = self._pipe.read(size if size > 0 else 1 << 20) or b""
        self.child.progressed()
        if not data:
            self._done = True
            self.child.check()
        return data

    def close(self) -> None:
        if not self._done:
            self.child.abort()
        if self._pipe is not None:
            self._pipe.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def check_size(log: str, got: int, expected: int) -> None:
    """Raise IntegrityError unless a fetched log holds the size the server listed."""
    if got != expected:
        raise IntegrityError(f"{log} came as {got} bytes, the server lists {expected}")

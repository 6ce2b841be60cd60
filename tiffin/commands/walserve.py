"""The fetch helper's answers to wal-fetch calls (walask.ask), over a Unix socket in its
spool (`pg_wal/tiffin.fetched/SOCK`).

A recovery calls restore_command for every file it might need, one after another: the
newest timeline's history, each segment, the segment past the archive's end (twice), then
the histories again. Each call is a process start; one that found its file fetched ahead
costs only that, but one that did not (a history, a file past the end, a segment asked
again) loaded the whole of tiffin and connected to the target, ten times as long. While a
helper lives, it holds those already: a call hands it (archive, name, destination) and it
answers from the spool, from a fetch under way, or by fetching the file itself through its
open connection, checked as wal-fetch checks it. A file not in the archive is looked up
afresh on every call, never taken from an earlier answer.

The socket's folder is the spool, mode 0700: only the server's OS user reaches it, and the
helper also checks that the caller runs as its own user. A caller for another archive, or
whose answer would not be certain, gets "no" and does its own work as before.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Protocol

from tiffin.commands.walask import SOCK, socket_path
from tiffin.commands.walspool import FetchSpool
from tiffin.engine import archive
from tiffin.errors import NotFound, TiffinError, failure_line
from tiffin.targets import Target

WAIT = 0.005  # seconds between two looks at a file being fetched ahead


class Connections(Protocol):
    def get(self) -> Target: ...


class Server:
    """Serves SPOOL's wal-fetch calls from a thread of its own until close(), through CONNS
    (a walahead.Targets). ON_ASKED is told each name fetched here, not ahead (the helper
    fetches ahead from there); IN_FLIGHT says whether a name is being fetched ahead right now."""

    def __init__(
        self,
        spool: FetchSpool,
        conns: Connections,
        on_asked: Callable[[str], None],
        in_flight: Callable[[str], bool],
    ) -> None:
        self.spool, self.conns, self.on_asked, self.in_flight = spool, conns, on_asked, in_flight
        self.path = os.path.join(spool.dir, SOCK)
        self.asked = 0  # calls answered: the helper's idle clock restarts at each
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Listen; return False if the socket cannot be made (calls then do their own work)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        folder = None
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # left by a helper that ended without cleaning up
            path, folder = socket_path(self.path)
            sock.bind(path)
            sock.listen(8)
        except (OSError, ValueError):  # ValueError: a NUL in the path
            sock.close()
            return False
        finally:
            if folder is not None:
                os.close(folder)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, daemon=True, name="tiffin-serve")
        self._thread.start()
        return True

    def close(self) -> None:
        """Stop listening and remove the socket (calls from now on do their own work)."""
        if self._sock is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._sock = None

    def _serve(self) -> None:
        sock = self._sock
        while sock is not None and self._sock is sock:
            try:
                conn, _ = sock.accept()
            except OSError:
                return  # closed
            with conn:
                try:
                    conn.settimeout(5.0)
                    answer = self._answer(conn) if self._same_user(conn) else "no"
                except Exception:  # no request may end the serving thread
                    answer = "no"  # the call does its own work, and says what is wrong
                try:
                    conn.sendall(answer.encode() + b"\n")
                except OSError:
                    pass  # the caller went away: it does its own work, or PostgreSQL retries
                finally:
                    self.asked += 1

    @staticmethod
    def _same_user(conn: socket.socket) -> bool:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        uid: int = struct.unpack("3i", creds)[1]
        return uid == os.getuid()

    def _answer(self, conn: socket.socket) -> str:
        request = b""
        while not request.endswith(b"\n"):
            got = conn.recv(4096)
            if not got or len(request) > 1 << 16:
                return "no"
            request += got
        verb, key, name, dest = (request.decode("utf-8", "replace")[:-1].split("\t") + [""] * 4)[:4]
        if verb != "fetch" or key != self.spool.key or not os.path.isabs(dest) or "\0" in dest:
            return "no"
        try:
            archive.check_walname(name)
        except TiffinError:
            return "no"
        return self.fetch(name, dest)

    def fetch(self, name: str, dest: str) -> str:
        """Put NAME at DEST: from the spool (waiting while it is being fetched ahead), else
        from the archive; return the answer ("ok", "missing\\tLINE" or "no")."""
        while self.in_flight(name):
            time.sleep(WAIT)
        if self.spool.take(name, dest):
            return "ok"
        try:
            archive.fetch(self.conns.get(), name, dest)
        except NotFound as exc:
            return "missing\t" + failure_line(f"Restoring {name}", exc)
        except (TiffinError, OSError):
            return "no"  # the call does it again, and says what is wrong
        self.on_asked(name)
        return "ok"

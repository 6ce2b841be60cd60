"""The rule every wait on a server obeys (a child of tiffin/engine/process.py that talks to one):
no progress for patience() seconds (--timeout), and no answer from the server either, ends
the wait with one sentence naming the server."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tiffin.errors import BackupFailed, TiffinError

# Seconds a child that talks to a server may go without progress (--timeout): see Server.
_PATIENCE = [120.0]


def set_patience(seconds: float) -> None:
    """Set how long a child that talks to a server may make no progress (--timeout)."""
    _PATIENCE[0] = float(seconds)


def patience() -> float:
    """Return how long a child that talks to a server may make no progress (--timeout)."""
    return _PATIENCE[0]


@dataclass(frozen=True)
class Server:
    """The server a child talks to, for the one rule every wait on it obeys: a child that
    makes no progress (no byte read from it, or written to it) for patience() seconds, and
    whose server then does not answer PING (a fresh session's `SELECT 1`) within as long, is
    killed with its process group; it then fails with one sentence naming the server. A
    server that answers keeps the child waiting: a dump waits for a lock, a load builds an
    index. NAME reads like 'the MySQL server at 127.0.0.1:3306'."""

    name: str
    ping: Callable[[], object] | None = None

    def answers(self) -> bool:
        if self.ping is None:
            return False
        try:
            self.ping()
        except (TiffinError, OSError):
            return False
        return True


# What a client says when its connect timeout (--connect-timeout, libpq's connect_timeout)
# expired: the server took the connection and never answered.
# (MariaDB: "... system error: 110" or "Can't connect to server on 'HOST' (110)"; libpq:
# "connection to server at ... failed: timeout expired"), at the end of a line.
NO_GREETING = re.compile(r"(system error: 110|\(110\)|failed: timeout expired)\s*$", re.M)


class Stalled(BackupFailed):
    """A child made no progress for patience() seconds and its server did not answer."""

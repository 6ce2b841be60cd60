"""A MariaDB server that keeps binary logs (TESTING.md: "MariaDB with binary logs")."""

from __future__ import annotations

import time

from tests.servers.mariadb import MariaDB

BINLOG_ARGS = ("--log-bin=bin", "--server-id=1", "--binlog-format=ROW")


def binlog_server() -> MariaDB:
    """Return a started MariaDB that writes binary logs named bin.NNNNNN."""
    return MariaDB(server_args=BINLOG_ARGS).start()


def master_status(server: MariaDB) -> tuple[str, int]:
    """Return the server's current binary log file and position."""
    file, pos = server.sql("SHOW MASTER STATUS").split("\t")[:2]
    return file, int(pos)


def purge_to(server: MariaDB, log: str) -> None:
    """PURGE BINARY LOGS TO LOG, again until it took: a log a finished fetch's server thread
    still holds is skipped for a moment."""
    deadline = time.monotonic() + 20
    while True:
        server.sql(f"PURGE BINARY LOGS TO '{log}'")
        if server.sql("SHOW BINARY LOGS").split("\t")[0] == log:
            return
        assert time.monotonic() < deadline, f"PURGE BINARY LOGS TO '{log}' never took"
        time.sleep(0.2)

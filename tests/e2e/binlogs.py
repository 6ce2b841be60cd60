"""A MariaDB server that keeps binary logs (TESTING.md: "MariaDB with binary logs")."""

from __future__ import annotations

from tests.servers.mariadb import MariaDB

BINLOG_ARGS = ("--log-bin=bin", "--server-id=1", "--binlog-format=ROW")


def binlog_server() -> MariaDB:
    """Return a started MariaDB that writes binary logs named bin.NNNNNN."""
    return MariaDB(server_args=BINLOG_ARGS).start()


def master_status(server: MariaDB) -> tuple[str, int]:
    """Return the server's current binary log file and position."""
    file, pos = server.sql("SHOW MASTER STATUS").split("\t")[:2]
    return file, int(pos)

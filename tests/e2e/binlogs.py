"""A MariaDB server that keeps binary logs (TESTING.md: "MariaDB with binary logs")."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

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


def utc_now(server: MariaDB) -> datetime:
    text = server.sql("SELECT UTC_TIMESTAMP()")
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def next_second(server: MariaDB) -> datetime:
    """Wait until the server's clock is in a new second; return that second."""
    before = utc_now(server)
    while (now := utc_now(server)) == before:
        time.sleep(0.05)
    return now


def marked_history(
    source: MariaDB, backup: Callable[[], object], ship: Callable[[], object], at_t2: str = ""
) -> tuple[datetime, datetime, datetime]:
    """Make shop.markers on SOURCE with marker 0, BACKUP() and SHIP() the logs; then markers
    1 at T1, 21-23 at T2 (a transaction, AT_T2's SQL, a log rotation between 22 and 23) and 3
    at T3; SHIP() again. Return (T1, T2, T3)."""
    source.sql(
        "CREATE DATABASE shop;"
        "CREATE TABLE shop.markers (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB;"
        "INSERT INTO shop.markers VALUES (0, 'before the backup');"
    )
    backup()
    ship()
    t1 = next_second(source)
    source.sql("INSERT INTO shop.markers VALUES (1, 't1')")
    t2 = next_second(source)
    # one client session, so that a loaded machine still does all of it within the second
    done = source.sql(
        "INSERT INTO shop.markers VALUES (21, 't2 before rotation');"
        "BEGIN; INSERT INTO shop.markers VALUES (22, 't2 trx'); COMMIT;"
        + at_t2
        + "FLUSH BINARY LOGS; INSERT INTO shop.markers VALUES (23, 't2 after rotation');"
        "SELECT UTC_TIMESTAMP();"
    )
    assert done.splitlines()[-1] == t2.strftime("%Y-%m-%d %H:%M:%S"), "too slow for the second"
    t3 = next_second(source)
    source.sql("INSERT INTO shop.markers VALUES (3, 't3')")
    ship()
    return t1, t2, t3

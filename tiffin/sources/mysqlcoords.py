"""The binary log coordinates of a MySQL/MariaDB dump's snapshot (SPEC §6).

The dump tool writes them itself, as comments, when given --master-data=2 (MySQL 8:
--source-data=2): `-- CHANGE MASTER TO MASTER_LOG_FILE='bin.000012', MASTER_LOG_POS=4567;`
in its header, read under the lock with --lock-all-tables and inside the snapshot with
--single-transaction (MariaDB reads Binlog_snapshot_file/position there: no extra lock).
Those comments are read back from the stream as it passes, so that the manifest records
exactly what the dump holds; the GTID of that position is then asked of the server
(BINLOG_GTID_POS), else taken from the dump's own deferred gtid_slave_pos comment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tiffin.engine.streams import Reader
from tiffin.errors import TiffinError

# Where the header's coordinates comment lies: mariadb-dump writes it before any table.
HEAD_BYTES = 64 << 10
TAIL_BYTES = 8 << 10

_HEAD = re.compile(
    rb"^-- CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^'\n]{1,255})',"
    rb" (?:MASTER|SOURCE)_LOG_POS=(\d{1,20});",
    re.M,
)
_GTID = re.compile(rb"^-- SET GLOBAL gtid_slave_pos='([0-9,\- ]{0,4000})';\s*\Z", re.M)
_GTID_TEXT = re.compile(r"^(\d+-\d+-\d+)(,\d+-\d+-\d+)*\Z")


def dump_option(dump_bin: str, helptext: str) -> str:
    """Given the dump tool's path and its --help text, return the option that writes the
    coordinates as a comment."""
    if "mariadb" not in dump_bin.rsplit("/", 1)[-1] and "--source-data" in helptext:
        return "--source-data=2"
    return "--master-data=2"


def check_gtid(text: str) -> str | None:
    """Given a GTID list as the server or a dump gives it, return it if it reads as one
    (domain-server-sequence, comma-separated), else None."""
    text = text.strip()
    return text if text and _GTID_TEXT.match(text.replace(" ", "")) else None


class CoordinateScanner:
    """A reader that passes a dump's bytes through unchanged and reads, from its first
    HEAD_BYTES, the binary log file and position of its snapshot, and from its last
    TAIL_BYTES the GTID it records. Nothing is copied but those two windows."""

    def __init__(self, inner: Reader) -> None:
        self.inner = inner
        self._head = bytearray()
        self._tail = b""

    def read(self, size: int = -1, /) -> bytes:
        data = self.inner.read(size)
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]
        self._tail = (
            (self._tail + data)[-TAIL_BYTES:] if len(data) < TAIL_BYTES else data[-TAIL_BYTES:]
        )
        return data

    def close(self) -> None:
        self.inner.close()

    def found(self) -> dict[str, Any]:
        """Return {file, position[, gtid]} as the dump records them, or {} if it holds none."""
        head = _HEAD.search(bytes(self._head))
        if head is None:
            return {}
        found: dict[str, Any] = {
            "file": head[1].decode("utf-8", "replace"),
            "position": int(head[2]),
        }
        tail = _GTID.search(self._tail)
        gtid = check_gtid(tail[1].decode("ascii")) if tail else None
        if gtid:
            found["gtid"] = gtid
        return found


def binlog_name_ok(name: str) -> bool:
    """Given a binary log's name as a server or a dump gives it, return whether it is a
    plain name (BASENAME.NNNNNN), fit to be a stored file's name."""
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.\d{6,}", name))


Query = Callable[[str], list[list[str]]]


def binlog_status(query: Query, late: list[str], row: list[str]) -> dict[str, Any] | None:
    """Given a way to query the server and its values of @@log_bin, @@server_id and
    IFNULL(@@log_bin_basename, '') (read with the source's other details), return its binary
    logging details (server_id, the logs' basename) if it logs and this login may read its
    position; else None, with a warning appended to LATE when it logs but the login may not."""
    if row[0] != "1":
        return None
    try:
        query("SHOW MASTER STATUS")
    except TiffinError:
        late.append(
            "binary logging is on, but this login may not read the binary log position "
            "(grant it BINLOG MONITOR and RELOAD): the dump records no coordinates"
        )
        return None
    return {"server_id": int(row[1]), "basename": row[2].rsplit("/", 1)[-1]}


def coordinates(
    scanner: CoordinateScanner | None,
    binlog: dict[str, Any] | None,
    query: Query,
    late: list[str],
) -> dict[str, Any]:
    """Given the scanner the dump passed through, the server's binary logging details and a
    way to query it, return {"binlog": {file, position, gtid, server_id, basename}} as the
    dump recorded them, or {} (with a warning in LATE) if it recorded none. Never raises."""
    if scanner is None or binlog is None:
        return {}
    found = scanner.found()
    if not found or not binlog_name_ok(found["file"]):
        late.append("the dump recorded no binary log coordinates")
        return {}
    try:  # the name is plain (binlog_name_ok): no quote can be in it
        gtid = query(
            f"SELECT IFNULL(BINLOG_GTID_POS('{found['file']}', {int(found['position'])}), '')"
        )[0][0]
    except (TiffinError, IndexError):
        gtid = ""  # MySQL has no BINLOG_GTID_POS: the dump's own comment, if any
    if check_gtid(gtid):
        found["gtid"] = gtid
    return {"binlog": {**found, **binlog}}

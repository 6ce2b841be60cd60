"""What a binary log holds, read from its event headers as its bytes pass (no SQL decoded).

A binary log (v4, MySQL 5+ and MariaDB) is the magic b"\\xfebin" then events, each with a
19-byte header: timestamp (u32), type (u8), server_id (u32), length (u32, the whole event),
next position (u32), flags (u16), all little-endian. From these tiffin learns, without
trusting anything else in the file: that the log is whole (the events chain to its last
byte), when its first and last events were written, when its last transaction committed,
and the log it rotated to.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tiffin.engine.streams import Reader
from tiffin.errors import IntegrityError

MAGIC = b"\xfebin"
HEADER = 19
STOP, ROTATE, QUERY, FORMAT, XID = 3, 4, 2, 15, 16
MARIADB_GTID_LIST = 163
# A transaction's end: an InnoDB commit (XID), or a statement logged on its own (a query
# other than BEGIN: DDL, a MyISAM change, COMMIT of a non-XA transaction).
_HEAD = struct.Struct("<IBIIIH")
_MAX_EVENT = 1 << 30  # max_allowed_packet's limit: a longer length is a damaged file


@dataclass
class LogFacts:
    """What a whole binary log told: the times are Unix seconds (0: none seen)."""

    size: int = 0
    events: int = 0
    first_time: int = 0
    last_time: int = 0
    last_commit: int = 0
    server_id: int = 0
    rotates_to: str = ""
    stopped: bool = False  # ended by a server shutdown (STOP), not a rotation
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "events": self.events,
            "first_time": iso(self.first_time),
            "last_time": iso(self.last_time),
            "last_commit": iso(self.last_commit) if self.last_commit else None,
            "server_id": self.server_id,
            "rotates_to": self.rotates_to or None,
        }


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventReader:
    """A reader that passes a binary log's bytes through unchanged and reads its event
    headers. After EOF, facts() says what the log held; it raises IntegrityError if the
    bytes are not a whole binary log. With START (a position) and STOP_AT (Unix seconds), a
    commit counts only from START and before the first event at or after STOP_AT: what a
    replay from START that stops there (mariadb-binlog --stop-datetime) applies."""

    def __init__(
        self, inner: Reader, name: str, start: int = 0, stop_at: int | None = None
    ) -> None:
        self.inner = inner
        self.name = name
        self.start = start
        self.stop_at = stop_at
        self.stopped = False  # an event at or after STOP_AT was met
        self._pos = 4  # where the next event starts
        self._at = 0  # where the current one started
        self._facts = LogFacts()
        self._pending = bytearray()  # the bytes of the event being read, up to its body
        self._want = 4  # bytes still to come before the next decision
        self._stage = "magic"
        self._skip = 0  # body bytes of the current event still to pass unread
        self._event: tuple[int, int, int, int] | None = None  # (time, type, server, length)
        self._body = bytearray()
        self._crc = 0  # bytes of checksum at the end of every event (the FORMAT event says)

    def read(self, size: int = -1, /) -> bytes:
        data = self.inner.read(size)
        self._facts.size += len(data)
        self._take(memoryview(data))
        return data

    def close(self) -> None:
        self.inner.close()

    def _take(self, view: memoryview) -> None:
        while view:
            if self._skip:
                n = min(self._skip, len(view))
                if self._event is not None and self._event[1] in (ROTATE, QUERY, FORMAT):
                    self._body += view[: min(n, 4096 - len(self._body))]
                self._skip -= n
                view = view[n:]
                if not self._skip:
                    self._ended()
                continue
            n = min(self._want - len(self._pending), len(view))
            self._pending += view[:n]
            view = view[n:]
            if len(self._pending) < self._want:
                return
            if self._stage == "magic":
                if bytes(self._pending) != MAGIC:
                    raise IntegrityError(f"{self.name} is not a binary log (no magic number)")
                self._stage, self._want = "header", HEADER
            else:
                when, kind, server, length, _, _ = _HEAD.unpack(bytes(self._pending))
                if not HEADER <= length <= _MAX_EVENT:
                    raise IntegrityError(f"{self.name} holds an event of length {length}")
                self._event = (when, kind, server, length)
                self._at, self._pos = self._pos, self._pos + length
                self._body = bytearray()
                self._skip = length - HEADER
                if not self._skip:
                    self._ended()
            self._pending = bytearray()

    def _ended(self) -> None:
        """Note the event just read whole."""
        assert self._event is not None
        when, kind, server, _ = self._event
        f = self._facts
        f.events += 1
        if self.stop_at is not None and when >= self.stop_at and kind != FORMAT:
            self.stopped = True
        counts = self._at >= self.start and not self.stopped
        if when:
            f.first_time = f.first_time or when
            f.last_time = max(f.last_time, when)
        body = bytes(self._body)
        if kind == FORMAT:
            f.server_id = server
            # Its body ends with the checksum algorithm (1: CRC32) and its own checksum.
            self._crc = 4 if len(body) >= 5 and body[-5] == 1 else 0
        elif counts and (kind == XID or (kind == QUERY and not _is_begin(body))):
            f.last_commit = max(f.last_commit, when)
        elif kind == ROTATE and len(body) > 8 + self._crc:
            f.rotates_to = body[8 : len(body) - self._crc].decode("ascii", "replace")
        elif kind == STOP:
            f.stopped = True
        self._event = None

    def seen(self) -> LogFacts:
        """Return what the bytes read so far held (whole or not)."""
        return self._facts

    def facts(self) -> LogFacts:
        """Return what the whole log held. Raise IntegrityError if it ended mid-event."""
        if self._stage == "magic" or self._skip or self._pending:
            raise IntegrityError(f"{self.name} ends in the middle of an event: it is not whole")
        return self._facts


def _is_begin(body: bytes) -> bool:
    """Given the start of a QUERY event's body, return whether its statement is BEGIN."""
    if len(body) < 13:
        return False
    db_len, status_len = body[8], struct.unpack_from("<H", body, 11)[0]
    start = 13 + status_len + db_len + 1
    return body[start : start + 5] == b"BEGIN"

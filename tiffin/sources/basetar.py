"""What a pg_basebackup tar stream says of itself, read as it passes: no copy, no seek.

`pg_basebackup -D - -Ft` writes one tar: `backup_label` first (the start LSN, timeline and
time), the data files, `global/pg_control` (the system identifier in its first 8 bytes),
the WAL it fetched, and `backup_manifest` last (its "WAL-Ranges" hold the start and end LSN
of the WAL the backup needs). BaseTarReader hands every byte on unchanged and keeps only
those three small members (and the manifest's tail), so memory stays bounded.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tiffin.engine.streams import Reader

HEADER = 512
LABEL_MAX = 64 << 10  # backup_label is a few hundred bytes
MANIFEST_TAIL = 64 << 10  # the WAL-Ranges close the manifest, after every file's entry
KEPT = {"backup_label": LABEL_MAX, "global/pg_control": 8}
LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}\Z")
_RANGE = re.compile(
    rb'\{\s*"Timeline":\s*(\d+),\s*"Start-LSN":\s*"([0-9A-Fa-f]+/[0-9A-Fa-f]+)",'
    rb'\s*"End-LSN":\s*"([0-9A-Fa-f]+/[0-9A-Fa-f]+)"\s*\}'
)


def _size(field: bytes) -> int:
    """Given a tar header's size field, return the size: octal, or GNU's base-256."""
    if field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip() or b"0"
    return int(text, 8)


class BaseTarReader:
    """A reader that passes INNER's tar bytes on unchanged, keeping backup_label, the start of
    global/pg_control and the tail of backup_manifest as they pass (see BaseFacts)."""

    def __init__(self, inner: Reader) -> None:
        self.inner = inner
        self.kept: dict[str, bytearray] = {}
        self._header = bytearray()
        self._data = 0  # bytes of the current member's data still to pass
        self._pad = 0  # then its padding to the next 512
        self._member: str | None = None
        self._long: str | None = None  # a pax or GNU long name for the next member
        self._pax: bytearray | None = None
        self.began: datetime | None = None  # when its first bytes came (the backup's start)
        self.ended: datetime | None = None  # when the stream reached its end

    def read(self, size: int = -1, /) -> bytes:
        data = self.inner.read(size)
        if data:
            if self.began is None:
                self.began = datetime.now(UTC)
            self._feed(memoryview(data))
        elif self.ended is None:
            self.ended = datetime.now(UTC)
        return data

    def close(self) -> None:
        self.inner.close()

    def _feed(self, view: memoryview) -> None:
        while view:
            if self._data:
                take = view[: self._data]
                self._keep(take)
                self._data -= len(take)
                view = view[len(take) :]
                if not self._data:
                    self._end_member()
            elif self._pad:
                skip = min(self._pad, len(view))
                self._pad -= skip
                view = view[skip:]
            else:
                need = HEADER - len(self._header)
                self._header += view[:need]
                view = view[need:]
                if len(self._header) == HEADER:
                    self._start_member(bytes(self._header))
                    self._header.clear()

    def _start_member(self, block: bytes) -> None:
        if not block.strip(b"\0"):
            return  # the end-of-archive zero blocks
        kind = block[156:157]
        size = _size(block[124:136])
        name = block[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
        prefix = block[345:500].split(b"\0", 1)[0].decode("utf-8", "replace")
        if prefix and block[257:262] == b"ustar":
            name = f"{prefix}/{name}"
        self._member, self._pax = None, None
        if kind in (b"x", b"L"):
            self._pax = bytearray()
        else:
            self._member, self._long = self._long or name, None
        self._data, self._pad = size, -size % HEADER
        if not size:
            self._end_member()

    def _keep(self, data: memoryview) -> None:
        if self._pax is not None:
            if len(self._pax) < LABEL_MAX:
                self._pax += data
            return
        name = self._member
        if name == "backup_manifest":
            kept = self.kept.setdefault(name, bytearray())
            kept += data
            if len(kept) > 2 * MANIFEST_TAIL:
                del kept[:-MANIFEST_TAIL]
        elif name in KEPT:
            kept = self.kept.setdefault(name, bytearray())
            kept += data[: KEPT[name] - len(kept)]

    def _end_member(self) -> None:
        if self._pax is not None:
            raw = bytes(self._pax)
            if raw.endswith(b"\0") or b"=" not in raw:  # GNU 'L': the name itself
                self._long = raw.rstrip(b"\0").decode("utf-8", "replace")
            else:
                m = re.search(rb"\d+ path=([^\n]*)\n", raw)
                self._long = m.group(1).decode("utf-8", "replace") if m else None
            self._pax = None


@dataclass(frozen=True)
class BaseFacts:
    """What the manifest records of a base backup (SPEC §6)."""

    system_identifier: str
    timeline: int
    start_lsn: str
    stop_lsn: str
    start_time: str  # ISO 8601 UTC
    stop_time: str
    stop_timeline: int

    def details(self) -> dict[str, Any]:
        return {
            "system_identifier": self.system_identifier,
            "timeline": self.timeline,
            "start_lsn": self.start_lsn,
            "stop_lsn": self.stop_lsn,
            "start_time": self.start_time,
            "stop_time": self.stop_time,
            "stop_timeline": self.stop_timeline,
        }


def _iso(t: datetime, up: bool = False) -> str:
    """Given a time, return it in ISO 8601 UTC to the second (rounded up with UP)."""
    if up and t.microsecond:
        t = t.replace(microsecond=0) + timedelta(seconds=1)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def facts(reader: BaseTarReader) -> BaseFacts:
    """Given a BaseTarReader read to its end, return the base backup's facts. Raise ValueError
    naming what is missing if the stream was not a whole pg_basebackup tar."""
    label = bytes(reader.kept.get("backup_label", b"")).decode("utf-8", "replace")
    fields = dict(
        line.split(": ", 1) for line in label.splitlines() if ": " in line and len(line) < 1024
    )
    start = fields.get("START WAL LOCATION", "").split(" ", 1)[0]
    if not LSN.match(start):
        raise ValueError("the stream holds no backup_label with a start WAL location")
    timeline = fields.get("START TIMELINE", "")
    control = bytes(reader.kept.get("global/pg_control", b""))
    if len(control) < 8:
        raise ValueError("the stream holds no global/pg_control")
    (system,) = struct.unpack("<Q", control[:8])
    ranges = _RANGE.findall(bytes(reader.kept.get("backup_manifest", b"")))
    if not ranges:
        raise ValueError("the stream's backup_manifest holds no WAL range")
    first, last = ranges[0], ranges[-1]
    # The label's START TIME is in the server's log_timezone: the clock here is used instead,
    # read as the first and the last byte passed (the stop is then never early).
    ended = reader.ended or datetime.now(UTC)
    return BaseFacts(
        system_identifier=str(system),
        timeline=int(timeline) if timeline.isdigit() else int(first[0]),
        start_lsn=first[1].decode().upper(),
        stop_lsn=last[2].decode().upper(),
        start_time=_iso(reader.began or ended),
        stop_time=_iso(ended, up=True),
        stop_timeline=int(last[0]),
    )

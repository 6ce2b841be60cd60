"""The binary log archive of one label: PATH/LABEL.binlog/ (SPEC §6), read from its names and
records alone.

Each archived log BASENAME.NNNNNN is two objects, published in this order, each atomically
and never over an existing one: its bytes, LOG + codec suffix (bin.000012.gz), then its
record LOG.json (size and sha256 of the stored bytes, the log's own size, the times of its
first and last events and of its last commit). A log is archived when its record is there;
stored bytes without a record are the leftover of a run that ended between the two.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from tiffin.catalog.holdings import read_manifest, survey
from tiffin.catalog.naming import CODEC_EXT
from tiffin.errors import BackupFailed, IntegrityError, NotFound
from tiffin.job import TargetURL
from tiffin.targets.base import Entry, Target

FOLDER_SUFFIX = ".binlog"
RECORD_SUFFIX = ".json"
RECORD_MAX = 64 << 10
_LOG = re.compile(r"^(?P<base>[A-Za-z0-9][A-Za-z0-9._-]{0,200})\.(?P<seq>\d{6,})\Z")


def archive_url(url: TargetURL, label: str) -> TargetURL:
    """Given the target of the backups and a label, return the target of its archive."""
    folder = label + FOLDER_SUFFIX
    path = url.path.rstrip("/")
    if path or url.path.startswith("/"):
        return replace(url, path=f"{path}/{folder}")
    return replace(url, path=folder)


def split_log(name: str) -> tuple[str, int] | None:
    """Given a binary log's name, return (basename, sequence number), or None if it is none."""
    m = _LOG.match(name)
    return (m["base"], int(m["seq"])) if m else None


def log_name(basename: str, seq: int, like: str) -> str:
    """Given a basename and a sequence number, return the log's name, numbered as LIKE is."""
    width = len(like.rsplit(".", 1)[-1])
    return f"{basename}.{seq:0{width}d}"


@dataclass(frozen=True)
class Archived:
    """One archived log, as its record tells it. Times are ISO 8601 UTC (None: none seen)."""

    log: str
    stored: str
    size: int
    sha256: str
    compression: str
    log_size: int
    first_time: str | None
    last_time: str | None
    last_commit: str | None
    server_id: int
    rotates_to: str | None = None
    archived: str = ""

    @property
    def seq(self) -> int:
        parts = split_log(self.log)
        return parts[1] if parts else -1

    @property
    def end(self) -> datetime | None:
        """The time of the log's last event (its last transaction's is at or before it)."""
        return parse_iso(self.last_time)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes, log: str) -> Archived:
        """Given a record's bytes, return it. Raise IntegrityError if it is not one of LOG."""
        try:
            data: Any = json.loads(raw)
            fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
            got = cls(**fields)
            ok = (
                got.log == log
                and isinstance(got.size, int)
                and got.compression in CODEC_EXT
                and got.stored == log + CODEC_EXT[got.compression]
                and re.fullmatch(r"[0-9a-f]{64}", got.sha256) is not None
            )
        except (ValueError, TypeError, KeyError):
            ok = False
        if not ok:
            raise IntegrityError(f"the archive record of {log} is not valid")
        return got


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def archived_names(entries: list[Entry]) -> list[str]:
    """Given an archive's listing, return the logs it holds (those with a record), in order."""
    names = [
        e.name[: -len(RECORD_SUFFIX)]
        for e in entries
        if e.name.endswith(RECORD_SUFFIX) and not e.partial
    ]
    logs = [n for n in names if split_log(n)]
    return sorted(logs, key=lambda n: (split_log(n) or ("", 0))[1])


def read_record(target: Target, log: str) -> Archived:
    """Return LOG's record. Raise NotFound if it has none, IntegrityError if not valid."""
    stream = target.open(log + RECORD_SUFFIX)
    try:
        raw = stream.read(RECORD_MAX + 1)
    finally:
        stream.close()
    if len(raw) > RECORD_MAX:
        raise IntegrityError(f"the archive record of {log} is too large")
    return Archived.from_json(raw, log)


def write_record(target: Target, record: Archived) -> None:
    """Publish RECORD (after its log's bytes): the log is archived from then on."""
    target.put(record.log + RECORD_SUFFIX, io.BytesIO(record.to_json()))


def first_missing(logs: list[str], start: str | None = None) -> str | None:
    """Given archived log names in order and the log a chain starts from (None: the oldest),
    return the first log missing between START and the newest, or None if none is. START
    itself missing is missing."""
    parsed = [(p, n) for n in logs if (p := split_log(n))]
    if not parsed:
        return start
    seqs = {p[1] for p, _ in parsed}
    base, like = parsed[-1][0][0], parsed[-1][1]
    begin = split_log(start) if start else None
    first = begin[1] if begin else min(seqs)
    for seq in range(first, max(seqs) + 1):
        if seq not in seqs:
            return log_name(base, seq, like)
    return None if first <= max(seqs) else start


class Gap(NotFound):
    """The archive lacks a log that a chain needs; str() names it."""

    def __init__(self, missing: str, why: str) -> None:
        super().__init__(why)
        self.missing = missing


def chain(logs: list[str], start: str) -> list[str]:
    """Given archived log names in order and the log a replay starts in, return the logs from
    START to the newest. Raise Gap naming the first one missing."""
    missing = first_missing(logs, start)
    if missing is not None:
        raise Gap(
            missing,
            f"the binary log archive lacks {missing}, which the replay from {start} needs: "
            "nothing was loaded",
        )
    first = split_log(start)
    assert first is not None
    return [n for n in logs if (split_log(n) or ("", -1))[1] >= first[1]]


@dataclass(frozen=True)
class Start:
    """A complete backup that a replay can continue: its name, when it finished, and the
    binary log coordinates of its snapshot."""

    name: str
    finished: datetime
    file: str
    position: int
    gtid: str | None = None


def starts(
    target: Target,
    label: str,
    newest_only: bool = False,
    whats: tuple[str, ...] = ("mysql", "mariabackup"),
) -> list[Start]:
    """Given the target of the backups and a label, return its complete backups of WHATS
    (dumps, physical backups) that record binary log coordinates, newest first; NEWEST_ONLY:
    the newest one only. A backup whose manifest cannot be read is passed over."""
    found: list[Start] = []
    for b in survey(target, read=False):
        if not b.complete or b.label != label or b.kind in ("data", "sqlite"):
            continue
        try:
            m = read_manifest(target, b.name)
        except (NotFound, IntegrityError, BackupFailed):
            continue
        coords = m.source.get("binlog") if m.what in whats else None
        if not isinstance(coords, dict) or not split_log(str(coords.get("file", ""))):
            continue
        finished = parse_iso(m.finished)
        if finished is None or not isinstance(coords.get("position"), int):
            continue
        gtid = coords.get("gtid")
        found.append(
            Start(b.name, finished, str(coords["file"]), coords["position"], gtid and str(gtid))
        )
        if newest_only:
            break
    return found

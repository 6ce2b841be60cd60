"""Backup names: LABEL_YYYY-MM-DD_HH:MM:SS_UTC + extension, always in UTC."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from tiffin.errors import UsageError

BASE_EXT = {"mysql": ".sql", "pgsql": ".sql", "data": ".data.tar", "sqlite": ".sqlite"}
BASE_EXT["pgbase"] = ".pgbase.tar"  # pgsql --physical: a pg_basebackup tar (SPEC §6)
BASE_EXT["mariabackup"] = ".mariabackup.xb"  # mysql --physical: a mariabackup xbstream (SPEC §6)
CODEC_EXT = {"gzip": ".gz", "zstd": ".zst", "none": ""}
MANIFEST_SUFFIX = ".manifest.json"
DRILL_SUFFIX = ".drill.json"  # NAME.drill.json: the last drill's result (tiffin/drillrecord.py)
PARTIAL_SUFFIX = ".partial"

_NAME = re.compile(
    r"^(?P<label>.+)_(?P<date>\d{4}-\d\d-\d\d)_(?P<time>\d\d:\d\d:\d\d)_UTC"
    r"(?P<base>\.sql|\.data\.tar|\.sqlite|\.pgbase\.tar|\.mariabackup\.xb)"
    r"(?P<codec>\.gz|\.zst)?(?P<age>\.age)?\Z"
)
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")


@dataclass(frozen=True)
class ParsedName:
    name: str
    label: str
    created: datetime
    base: str
    compression: str
    encrypted: bool

    @property
    def kind(self) -> str:
        """The WHAT the name tells apart: 'sql' (mysql or pgsql), 'data', 'sqlite' or
        'pgbase' (a PostgreSQL base backup) or 'mariabackup' (a physical MariaDB backup)."""
        return {
            ".sql": "sql",
            ".data.tar": "data",
            ".sqlite": "sqlite",
            ".pgbase.tar": "pgbase",
            ".mariabackup.xb": "mariabackup",
        }[self.base]


def default_label(env_hostname: str | None) -> str:
    """Given $HOSTNAME (or None), return the label: $HOSTNAME, else the host name."""
    # The kernel's node name is what gethostname() returns: no socket module to load for it.
    return env_hostname or os.uname().nodename or "tiffin"


def check_label(label: str) -> str:
    """Return the label if it can stand in a file name; raise UsageError otherwise."""
    if not _LABEL.match(label) or len(label) > 100:
        raise UsageError(
            f"the label {label!r} must start with a letter or digit and hold only letters, "
            "digits, '.', '_' and '-'"
        )
    return label


def make_name(label: str, what: str, when: datetime, compression: str, encrypted: bool) -> str:
    """Given a label, WHAT, an aware datetime, a codec and whether it is encrypted, return the
    backup's name, e.g. ramen_2011-02-10_14:17:42_UTC.sql.gz."""
    stamp = when.astimezone(UTC).strftime("%Y-%m-%d_%H:%M:%S")
    ext = BASE_EXT[what] + CODEC_EXT[compression] + (".age" if encrypted else "")
    return f"{label}_{stamp}_UTC{ext}"


def parse_name(name: str) -> ParsedName | None:
    """Given a file name, return its parts, or None if it is not a tiffin backup name."""
    m = _NAME.match(name)
    if not m:
        return None
    created = datetime.strptime(m["date"] + " " + m["time"], "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=UTC
    )
    codec = {".gz": "gzip", ".zst": "zstd", None: "none"}[m["codec"]]
    return ParsedName(name, m["label"], created, m["base"], codec, m["age"] is not None)


def check_name(name: str) -> str:
    """Return NAME if it is a plain file name (no '/', no '..'); raise UsageError otherwise."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise UsageError(f"{name!r} is not a backup name (it must be a plain file name)")
    return name

"""The numbers an option takes, read from a command-line string or a TOML value: ASCII
digits only, sizes with binary multiples, octal file modes. Ranges are the option table's."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from tiffin.errors import UsageError

# ASCII digits only: str.isdigit() and int() also take other scripts' digits and '²'.
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_MODE = re.compile(r"(0o)?[0-7]{1,4}")
_SIZE = re.compile(r"^\s*([0-9]+)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"\s*([0-9]{1,12}(?:\.[0-9]{1,6})?)\s*([smhd])\s*")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Given a duration, a number with s, m, h or d ('26h', '90m', '1.5d'), return seconds.
    Raise ValueError saying the form if it is anything else (a bare number too: 26 what?)."""
    m = _DURATION.fullmatch(str(text))
    if not m:
        raise ValueError("expected a duration: a number with s, m, h or d, like 26h")
    return float(m.group(1)) * UNIT_SECONDS[m.group(2)]


def parse_size(text: str) -> int:
    """Given '4G', '4GiB', '1M' or '123', return bytes (binary multiples). Raise UsageError."""
    m = _SIZE.match(str(text))
    if not m or len(m.group(1)) > 30:
        raise UsageError(f"the size {text!r} must be bytes or a number with K, M, G or T")
    n = int(m.group(1)) << (10 * " KMGT".index((m.group(2) or " ").upper()))
    if n <= 0:
        raise UsageError(f"the size {text!r} must be more than 0")
    return n


def number(kind: str, value: Any) -> float:
    """Given an option's kind (int, float, size or mode) and its raw value (a command-line
    string or a TOML value), return the number. Raise ValueError saying what was expected."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not true or false")
    if kind == "mode":
        if isinstance(value, int):  # TOML's 0o640 and 416 are the same integer, 640 another
            raise ValueError('write a file mode as a quoted string of octal digits, like "0640"')
        if isinstance(value, str) and _MODE.fullmatch(value):
            mode = int(value.removeprefix("0o"), 8)
            if mode & 0o7000:
                raise ValueError("a backup takes no setuid, setgid or sticky bit (try 0600)")
            if mode & 0o022:  # others could write a hostile dump in its place
                raise ValueError("no one but the owner may write a backup (try 0600 or 0640)")
            if mode & 0o600 != 0o600:
                raise ValueError("the owner must read and write a backup (try 0600 or 0640)")
            return mode
        raise ValueError("expected an octal file mode such as 0600")
    if kind == "duration":
        if not isinstance(value, str):
            raise ValueError("expected a duration as a string: a number with s, m, h or d")
        return parse_duration(value)
    if kind == "size":
        try:
            return value if isinstance(value, int) else parse_size(str(value))
        except UsageError as exc:
            raise ValueError(str(exc)) from None
    if isinstance(value, int) or (isinstance(value, str) and _INT.fullmatch(value)):
        return int(value) if len(str(value)) < 40 else math.inf  # out of every span
    if kind == "int":
        raise ValueError("expected a whole number")
    if isinstance(value, float) or (isinstance(value, str) and _FLOAT.fullmatch(value)):
        return float(value)
    raise ValueError("expected a number")


_UTC_TIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[ T]([0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]{1,6})?"
)
_LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")


def parse_utc_time(text: str, flag: str = "--to-time") -> datetime:
    """Given 'YYYY-MM-DD HH:MM:SS UTC' (or ...Z, or +00:00; fractions of a second allowed),
    return the aware datetime in UTC. Raise UsageError for any other form or zone."""
    raw = str(text).strip()
    body = raw
    for zone in (" UTC", "Z", "+00:00", " +00:00", "+00"):
        if body.endswith(zone):
            body = body[: -len(zone)]
            break
    else:
        body = ""
    m = _UTC_TIME.fullmatch(body)
    if not m:
        raise UsageError(f'{flag} {text!r}: write a time in UTC as "YYYY-MM-DD HH:MM:SS UTC"')
    try:
        when = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{m.group(3) or ''}")
    except ValueError:
        raise UsageError(f"{flag} {text!r}: no such date or time") from None
    return when.replace(tzinfo=UTC)


def parse_lsn(text: str, flag: str = "--to-lsn") -> str:
    """Given a PostgreSQL WAL position 'X/Y' (hex), return it upper-cased. Raise UsageError."""
    if not _LSN.fullmatch(str(text).strip()):
        raise UsageError(
            f"{flag} {text!r}: write a WAL position as two hex numbers, like 0/3000060"
        )
    return str(text).strip().upper()

"""The numbers an option takes, read from a command-line string or a TOML value: ASCII
digits only, sizes with binary multiples, octal file modes. Ranges are the option table's."""

from __future__ import annotations

import math
import re
from typing import Any

from tiffin.errors import UsageError

# ASCII digits only: str.isdigit() and int() also take other scripts' digits and '²'.
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_MODE = re.compile(r"(0o)?[0-7]{1,4}")
_SIZE = re.compile(r"^\s*([0-9]+)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)


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

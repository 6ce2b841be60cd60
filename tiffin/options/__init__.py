"""One table of options: it feeds argparse, the TOML config and --help alike.

A value travels as the option's `dest` (the TOML key, e.g. keep_daily = 7) and becomes part
of a frozen Job only through the builders in jobargs.py. What an option is lives in opt.py,
the rows in table.py; this module finds a row and types a value by it.
"""

from __future__ import annotations

from typing import Any

from tiffin.errors import UsageError
from tiffin.numbers import number
from tiffin.numbers import parse_size as parse_size  # where callers have found it
from tiffin.options import opt as optdef
from tiffin.options.opt import *  # noqa: F403  the command names, re-exported
from tiffin.options.opt import Opt
from tiffin.options.table import OPTIONS

__all__ = [
    *optdef.__all__,
    "OPTIONS",
    "BY_DEST",
    "EDGE_ONLY",
    "NUMERIC",
    "coerce",
    "default",
    "parse_size",
]

BY_DEST = {o.dest: o for o in OPTIONS}
# The command line's own flags (--debug, --json, ...): never a config key or a scheduled flag.
EDGE_ONLY = frozenset(o.dest for o in OPTIONS if not o.config)


def default(dest: str) -> Any:
    """Given an option's dest, return its default (None: the option has none)."""
    return BY_DEST[dest].default


NUMERIC = frozenset({"int", "float", "size", "mode", "duration"})
# Every number an option takes has its range in the table: none is typed without one.
assert all(o.span for o in OPTIONS if o.kind in NUMERIC), "a numeric option lacks its span"


def _shown(kind: str, x: float) -> str:
    """Given an option's kind and one end of its span, return it as the user writes it."""
    if kind == "mode":
        return oct(int(x))
    if kind == "duration":
        return f"{x:g}s" if x < 86400 else f"{x / 86400:g}d"
    return f"{x:,}"


def coerce(opt: Opt, value: Any) -> Any:
    """Given an option and a raw value (argparse string or TOML value), return the typed value,
    numbers within the option's span. Raise UsageError with the option's name if it does not
    fit."""
    try:
        if opt.kind == "flag":
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            return value
        if opt.kind == "list":
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in items):
                raise ValueError("expected a string or a list of strings")
            if any("\x00" in v for v in items):
                raise ValueError("may not contain a NUL character")
            return tuple(items)
        if opt.span is not None:
            n = number(opt.kind, value)
            low, high = opt.span
            if not low <= n <= high:  # also nan, which compares false with everything
                shown = [_shown(opt.kind, x) for x in (low, high)]
                raise ValueError(f"expected a number from {shown[0]} to {shown[1]}")
            return n
        if not isinstance(value, str):
            raise ValueError("expected a string")
        if "\x00" in value:  # no file name, host or argument can hold one
            raise ValueError("may not contain a NUL character")
        if opt.choices and value not in opt.choices:
            raise ValueError(f"expected one of {', '.join(opt.choices)}")
        return value
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{opt.flag} {value!r}: {exc}") from None

"""A small checker of JSON values against a schema: the one place a manifest read from a
target (input from strangers) is held to the types and ranges its readers rely on.

A schema is one of:
  str, bool, int        that JSON type (an int is never a bool, and lies in 0 .. MAX_INT)
  Hex(n)                a string of N lower-case hexadecimal digits
  List(s)               a list whose every item matches s
  Map(s)                an object (any string keys) whose every value matches s
  Fields({k: s}, req)   an object: each known key K that is present matches s, the keys in
                        REQ must be present; unknown keys are tolerated (forward compatible)
  AnyOf(s1, s2, ...)    the first that matches
  Optional(s)           null or s
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_INT = (1 << 63) - 1  # what a size, a count or a row number can be on any server


class Invalid(ValueError):
    """A value does not match its schema; str() says where and why."""


@dataclass(frozen=True)
class Hex:
    digits: int


@dataclass(frozen=True)
class List:
    item: Any


@dataclass(frozen=True)
class Map:
    value: Any


@dataclass(frozen=True)
class Fields:
    fields: Mapping[str, Any]
    required: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AnyOf:
    options: tuple[Any, ...]

    def __init__(self, *options: Any) -> None:
        object.__setattr__(self, "options", options)


@dataclass(frozen=True)
class Optional:
    inner: Any


_NAMES = {str: "a string", bool: "true or false", int: "a whole number from 0 to 2^63-1"}


def check(value: Any, schema: Any, where: str) -> None:
    """Given a JSON value, its schema and its path (e.g. 'parts[2].size'), return if the value
    matches. Raise Invalid naming the first place that does not."""
    if schema is str or schema is bool:
        if type(value) is not schema:
            raise Invalid(f"{where} must be {_NAMES[schema]}")
    elif schema is int:
        if type(value) is not int or not 0 <= value <= MAX_INT:
            raise Invalid(f"{where} must be {_NAMES[int]}")
    elif isinstance(schema, Hex):
        if type(value) is not str or not re.fullmatch(f"[0-9a-f]{{{schema.digits}}}", value):
            raise Invalid(f"{where} must be {schema.digits} hexadecimal digits")
    elif isinstance(schema, List):
        if type(value) is not list:
            raise Invalid(f"{where} must be a list")
        for i, item in enumerate(value):
            check(item, schema.item, f"{where}[{i}]")
    elif isinstance(schema, Map | Fields):
        if type(value) is not dict:
            raise Invalid(f"{where} must be an object")
        if isinstance(schema, Map):
            for key, item in value.items():
                check(item, schema.value, f"{where}.{key}")
            return
        missing = sorted(schema.required - value.keys())
        if missing:
            raise Invalid(f"{where}.{missing[0]} is missing")
        for key, sub in schema.fields.items():
            if key in value:
                check(value[key], sub, f"{where}.{key}")
    elif isinstance(schema, Optional):
        if value is not None:
            check(value, schema.inner, where)
    elif isinstance(schema, AnyOf):
        for option in schema.options:
            try:
                check(value, option, where)
                return
            except Invalid:
                continue
        raise Invalid(f"{where} has neither of the shapes this tiffin knows")
    else:  # pragma: no cover - a schema written wrong is a bug here, not bad input
        raise TypeError(f"unknown schema {schema!r}")

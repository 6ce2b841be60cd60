"""The table of commands, and the two streams a command prints on."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from tiffin.errors import OutputClosed

Handler = Callable[[list[str], dict[str, Any]], int]
COMMANDS: dict[str, tuple[str, Handler]] = {}


def command(name: str, summary: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (summary, fn)
        return fn

    return register


def out(line: str = "") -> None:
    try:
        print(line, flush=True)
    except BrokenPipeError:
        raise OutputClosed("standard output was closed") from None


def err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)

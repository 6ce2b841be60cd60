"""argv -> Job -> run; main() alone maps exceptions to exit statuses and prints them.

The commands register themselves in `registry.COMMANDS` as their modules are imported:
`plan` (backup, run, schedule, unschedule), `read` (restore, list, ..., status), `wal`
(wal-push, wal-fetch) and `binlog`."""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from tiffin import __version__, options, usage
from tiffin.cli import binlog, plan, read, wal
from tiffin.cli.registry import COMMANDS, err, out
from tiffin.engine import process, streams
from tiffin.errors import (
    ExitStatus,
    OutputClosed,
    TiffinError,
    UsageError,
    failure_line,
    os_error_text,
)

assert binlog and plan and read and wal  # imported for the commands they register
# --help lists them in the order a user meets them: backups, reading them, the archives
SHOWN = [
    *("backup", "run", "schedule", "unschedule", "restore", "list", "verify", "prune", "drill"),
    *("status", "wal-push", "wal-fetch", "binlog"),
]
for _name in sorted(COMMANDS, key=lambda n: SHOWN.index(n) if n in SHOWN else len(SHOWN)):
    COMMANDS[_name] = COMMANDS.pop(_name)


def parse(argv: Sequence[str]) -> tuple[str, list[str], dict[str, Any]]:
    """Given argv (without the program), return the command, its positionals and its typed
    option values. Raise UsageError if anything is malformed."""
    if not argv or argv[0] not in COMMANDS:
        if argv and argv[0] in ("-h", "--help"):
            out(usage.top_help({n: s for n, (s, _) in COMMANDS.items()}))
            raise SystemExit(0)
        if argv and argv[0] == "--version":
            out(f"tiffin {__version__}")
            raise SystemExit(0)
        what = f"unknown command {argv[0]!r}" if argv else "say what to do"
        raise UsageError(f"{what}: use one of {', '.join(COMMANDS)} (tiffin --help)")
    name = argv[0]
    words = [_hold_dashes(w) for w in argv[1:]]
    ns = usage.command_parser(name, COMMANDS[name][0]).parse_intermixed_args(words)
    values: dict[str, Any] = {}
    for key, held in vars(ns).items():
        value = _give_dashes(held)
        if key == "args" or value is None:
            continue
        opt = options.BY_DEST.get(key)
        if opt is None:
            values[key] = value
        elif opt.kind == "list":
            values[key] = options.coerce(opt, list(value))
        else:
            values[key] = options.coerce(opt, value)
    return name, list(_give_dashes(ns.args)), values


# argparse (before Python 3.12.3) drops a value that is exactly "--" even when it is glued
# to its option (`--exclude=--`), which then arrives empty: such a value is held under a
# name no argv word can have (a NUL) while argparse reads, then given back.
HELD_DASHES = "\0--"


def _hold_dashes(word: str) -> str:
    flag, eq, value = word.partition("=")
    return f"{flag}={HELD_DASHES}" if eq and value == "--" and flag.startswith("--") else word


def _give_dashes(value: Any) -> Any:
    if value == HELD_DASHES:
        return "--"
    if isinstance(value, list):
        return [_give_dashes(v) for v in value]
    return value


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run tiffin; return the exit status. The only place exceptions become messages."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="tiffin: %(message)s",
        stream=sys.stderr,
    )
    # Both handlers are installed whatever was inherited: a shell runs `cmd &` and nohup
    # with SIGINT ignored, and Python then leaves it ignored, so Ctrl-C or `kill -INT`
    # would not stop a run and clean it up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    process.begin()
    streams.keep_blocks_in_heap()
    try:
        cmd, args, values = parse(argv)
        return COMMANDS[cmd][1](args, values)
    except SystemExit as exc:
        return int(exc.code or 0)
    except OutputClosed:  # quiet, as `cat | head` is; the exit's own flush says nothing either
        process.kill_all()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.FAILED
    except TiffinError as exc:
        if debug:
            traceback.print_exc()
        err(failure_line(exc.subject, exc) if exc.subject else f"tiffin: {exc}")
        return exc.exit_status
    except KeyboardInterrupt:
        process.kill_all()
        err("tiffin: interrupted; stopped and cleaned up, nothing was published")
        return ExitStatus.FAILED
    except OSError as exc:  # one that no module closer to it explained
        process.kill_all()
        if debug:
            traceback.print_exc()
        err(f"tiffin: {os_error_text(exc)}")
        return ExitStatus.FAILED
    except Exception as exc:
        process.kill_all()
        if debug:
            traceback.print_exc()
        err(f"tiffin: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)")
        return ExitStatus.FAILED
    finally:
        process.end()  # children lead process groups of their own: none may outlive tiffin


if __name__ == "__main__":
    sys.exit(main())

"""argv -> Job -> run; main() alone maps exceptions to exit statuses and prints them."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from tiffin import __version__, options, process
from tiffin.errors import ExitStatus, TiffinError, UsageError
from tiffin.options import OPTIONS, Opt

USAGE = """\
tiffin backup   WHAT HOW WHERE [PATH] [options]    (or: tiffin backup WHAT URL)
tiffin restore  HOW WHERE [PATH] NAME [options]    (or: tiffin restore URL NAME)
WHAT: mysql, pgsql, data, sqlite.  HOW: local, ftp, ftps, ssh, s3, s3multi."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _add(parser: argparse.ArgumentParser, opt: Opt) -> None:
    kw: dict[str, Any] = {"help": opt.help, "dest": opt.dest, "default": None}
    if opt.kind == "flag":
        kw["action"] = "store_const"
        kw["const"] = True
    elif opt.kind == "list":
        kw["action"] = "append"
        kw["metavar"] = opt.metavar or opt.dest.upper()
    else:
        kw["metavar"] = opt.metavar or (
            "{" + ",".join(opt.choices) + "}" if opt.choices else opt.dest.upper()
        )
    parser.add_argument(opt.flag, **kw)


Handler = Callable[[list[str], dict[str, Any]], int]
COMMANDS: dict[str, tuple[str, Handler]] = {}


def command(name: str, summary: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (summary, fn)
        return fn

    return register


def command_parser(name: str) -> Parser:
    """Return the argparse parser of one command, built from the options table."""
    summary = COMMANDS[name][0]
    p = Parser(prog=f"tiffin {name}", description=summary)
    p.add_argument("args", nargs="*", metavar="ARG")
    p.add_argument(
        "--debug",
        action="store_const",
        const=True,
        default=None,
        help="show tracebacks and every command run",
    )
    for opt in OPTIONS:
        if name in opt.commands:
            _add(p, opt)
    for flag, help_text in EXTRA_FLAGS.get(name, ()):
        p.add_argument(flag, action="store_const", const=True, default=None, help=help_text)
    return p


EXTRA_FLAGS: dict[str, tuple[tuple[str, str], ...]] = {
    "list": (("--json", "print a JSON array"),),
    "verify": (("--all", "verify every backup"),),
    "prune": (("--dry-run", "say what would be deleted, delete nothing"),),
}


def top_help() -> str:
    lines = [USAGE, "", "commands:"]
    lines += [f"  {name:<10} {summary}" for name, (summary, _) in COMMANDS.items()]
    lines.append("\nRun 'tiffin COMMAND --help' for a command's options.")
    return "\n".join(lines)


def parse(argv: Sequence[str]) -> tuple[str, list[str], dict[str, Any]]:
    """Given argv (without the program), return the command, its positionals and its typed
    option values. Raise UsageError if anything is malformed."""
    if not argv or argv[0] not in COMMANDS:
        if argv and argv[0] in ("-h", "--help"):
            out(top_help())
            raise SystemExit(0)
        if argv and argv[0] == "--version":
            out(f"tiffin {__version__}")
            raise SystemExit(0)
        what = f"unknown command {argv[0]!r}" if argv else "say what to do"
        raise UsageError(f"{what}: use one of {', '.join(COMMANDS)} (tiffin --help)")
    name = argv[0]
    ns = command_parser(name).parse_intermixed_args(list(argv[1:]))
    values: dict[str, Any] = {}
    for key, value in vars(ns).items():
        if key == "args" or value is None:
            continue
        opt = options.BY_DEST.get(key)
        if opt is None:
            values[key] = value
        elif opt.kind == "list":
            values[key] = options.coerce(opt, list(value))
        else:
            values[key] = options.coerce(opt, value)
    return name, list(ns.args), values


def out(line: str = "") -> None:
    print(line, flush=True)


def err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@command("backup", "take a backup: WHAT HOW WHERE [PATH], or WHAT URL")
def cmd_backup(args: list[str], values: dict[str, Any]) -> int:
    from tiffin import pipeline, report

    if not args:
        raise UsageError("say what to back up: mysql, pgsql, data or sqlite")
    job = options.backup_job(args[0], args[1:], values)
    result = pipeline.backup(job)
    for line in report.success_lines(result, job.min_ratio):
        out(line)
    return ExitStatus.OK


@command("restore", "bring a backup back: HOW WHERE [PATH] NAME|latest, or URL NAME")
def cmd_restore(args: list[str], values: dict[str, Any]) -> int:
    from tiffin import pipeline

    job = options.restore_job(args, values)
    result = pipeline.restore(job)
    (err if job.output == "-" else out)(
        f"Restore of {result.name} completed: {result.summary} in {result.seconds:.1f} s."
    )
    return ExitStatus.OK


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
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cmd, args, values = parse(argv)
        return COMMANDS[cmd][1](args, values)
    except SystemExit as exc:
        return int(exc.code or 0)
    except UsageError as exc:
        if debug:
            traceback.print_exc()
        err(f"tiffin: {exc}")
        return ExitStatus.USAGE
    except TiffinError as exc:
        if debug:
            traceback.print_exc()
        name = getattr(exc, "name", None)
        err(f"Backup {name} FAILED: {exc}" if name else f"tiffin: {exc}")
        return ExitStatus.FAILED
    except KeyboardInterrupt:
        process.kill_all()
        err("tiffin: interrupted; stopped and cleaned up, nothing was published")
        return ExitStatus.FAILED
    except Exception as exc:
        process.kill_all()
        if debug:
            traceback.print_exc()
        err(f"tiffin: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)")
        return ExitStatus.FAILED


if __name__ == "__main__":
    sys.exit(main())

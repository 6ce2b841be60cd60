"""How each command is written: its argparse parser (from the options table), the forms it
takes and two or three examples, shown by `tiffin COMMAND --help`; and `tiffin --help`."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, NoReturn

from tiffin.errors import UsageError
from tiffin.options import OPTIONS, Opt
from tiffin.sources import INTO as INTO_KINDS
from tiffin.sources import TYPED
from tiffin.targets import KINDS as TARGET_KINDS

USAGE = """\
tiffin backup   WHAT HOW WHERE [PATH] [options]    (or: tiffin backup WHAT URL)
tiffin restore  HOW WHERE [PATH] NAME [options]    (or: tiffin restore URL NAME)
WHAT: {whats}.  HOW: {hows}.""".format(
    whats=", ".join(TYPED), hows=", ".join(k.hows[0] for k in TARGET_KINDS)
)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _add(parser: argparse.ArgumentParser, opt: Opt) -> None:
    kw: dict[str, Any] = {"help": opt.full_help, "dest": opt.dest, "default": None}
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


INTO = "|".join(INTO_KINDS)
# command: (the forms it takes, examples), from the seed's lines (README.md) where they fit.
FORMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "backup": (
        ("WHAT HOW WHERE [PATH] [options]", "WHAT URL [options]"),
        (
            "tiffin backup mysql local /var/backups",
            "tiffin backup data local /var/backups --dir ~/data",
            "tiffin backup pgsql sftp://ramenbackups@vps.example.com:2222/backups --database shop",
        ),
    ),
    "run": (
        ("[JOB ...] [--config FILE]",),
        ("tiffin run nightly-sql", "tiffin run --config /etc/tiffin.toml"),
    ),
    "status": (
        (
            "[JOB ...] [--config FILE] [--json] [--html FILE] [--max-age 26h]",
            "HOW WHERE [PATH] [--label LABEL] [--json] [--html FILE] [--max-age 26h]",
            "URL [--label LABEL] [--json] [--html FILE] [--max-age 26h]",
        ),
        (
            "tiffin status",
            "tiffin status --config /etc/tiffin.toml --html /var/www/backups.html",
            "tiffin status s3 ramen-backups --max-age 8d --json",
        ),
    ),
    "schedule": (
        (
            "WHAT HOW WHERE [PATH] [backup options] [--at HH:MM | --cron EXPR]",
            "--config FILE [JOB ...] [--at HH:MM | --cron EXPR]",
            "--list",
            "WHAT HOW WHERE [PATH] [backup options] --kubernetes [--namespace NS] [--secret NAME] "
            "[--image IMG]",
        ),
        (
            "tiffin schedule mysql s3 ramen-backups --email cook@noodles.example",
            "tiffin schedule data local /var/backups --dir ~/data --at 03:30",
            "tiffin schedule --list",
        ),
    ),
    "unschedule": (("JOB_ID ...", "--all"), ("tiffin unschedule --all",)),
    "restore": (
        (
            f"HOW WHERE [PATH] NAME|latest --into {INTO} | --output FILE [options]",
            f"URL NAME|latest --into {INTO} | --output FILE [options]",
        ),
        (
            "tiffin restore local /var/backups latest --into pgsql",
            "tiffin restore s3 ramen-backups latest --into mysql",
            "tiffin restore local /var/backups NAME --output dump.sql",
        ),
    ),
    "list": (
        ("HOW WHERE [PATH] [--json]", "URL [--json]"),
        ("tiffin list local /var/backups", "tiffin list s3 ramen-backups --json"),
    ),
    "verify": (
        ("HOW WHERE [PATH] NAME|latest|--all", "URL NAME|latest|--all"),
        ("tiffin verify local /var/backups latest", "tiffin verify ssh backup@host:2222 sql --all"),
    ),
    "prune": (
        ("HOW WHERE [PATH] --keep-last|hourly|daily|weekly|monthly|yearly N ... [--dry-run]",),
        (
            "tiffin prune local /var/backups --keep-last 7",
            "tiffin prune ftp backup@host sql --keep-daily 7 --keep-weekly 4 --dry-run",
        ),
    ),
    "drill": (
        (f"HOW WHERE [PATH] NAME|latest --into {INTO} [options]",),
        (
            "tiffin drill s3 ramen-backups latest --into pgsql",
            "tiffin drill local /var/backups latest --into dir",
        ),
    ),
}


def command_parser(name: str, summary: str) -> Parser:
    """Given a command and its one-line summary, return its argparse parser, built from the
    options table, whose --help shows the forms the command takes and examples."""
    forms, examples = FORMS.get(name, (("[ARG ...] [options]",), ()))
    p = Parser(
        prog=f"tiffin {name}",
        usage="\n       ".join(f"tiffin {name} {form}" for form in forms),
        description=summary,
        epilog="examples:\n" + "\n".join(f"  {e}" for e in examples) if examples else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    for opt in OPTIONS:
        if name in opt.commands or opt.everywhere:
            _add(p, opt)
    return p


def top_help(commands: Mapping[str, str]) -> str:
    """Given {command: summary}, return what `tiffin --help` prints."""
    lines = [USAGE, "", "commands:"]
    lines += [f"  {name:<10} {summary}" for name, summary in commands.items()]
    lines.append("\nRun 'tiffin COMMAND --help' for a command's options.")
    return "\n".join(lines)

"""A scheduled job as systemd user units: the text of its .service and .timer, pure functions.

ExecStart= is read by systemd's own rules (systemd.syntax(7)), not the shell's: each argument
is written as a double-quoted word of printable ASCII with C escapes, %% and $$.
"""

from __future__ import annotations

from collections.abc import Sequence

from tiffin.commands import cron
from tiffin.errors import UsageError


def exec_text(argv: Sequence[str]) -> str:
    """Given a command, return it for a unit's ExecStart=: each argument a double-quoted word
    in which systemd (systemd.syntax(7)) unescapes C escapes, `%%` and `$$`. Anything but
    printable ASCII is written as an escape, so the unit file stays one line of ASCII. Raise
    UsageError if an argument cannot be said (a NUL; text that is not UTF-8)."""
    return " ".join(f'"{_unit_escape(a)}"' for a in argv)


def _unit_escape(arg: str) -> str:
    out: list[str] = []
    for c in arg:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "%":
            out.append("%%")
        elif c == "$":
            out.append("$$")
        elif " " <= c <= "~":
            out.append(c)
        elif c == "\0" or "\ud800" <= c <= "\udfff":
            raise UsageError("an argument holds a NUL or is not UTF-8: systemd cannot run it")
        elif ord(c) < 0x80:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
    return "".join(out)


def unit_files(job_id: str, command: Sequence[str], when: str | None) -> tuple[str, str]:
    """Given a job id, its command and a cron time (None: a random time of day, fixed per
    machine), return the text of its .service and .timer."""
    if when is None:
        calendar, delay = "daily", "RandomizedDelaySec=1d\nFixedRandomDelay=true"
    else:
        calendar, delay = cron.on_calendar(when), "RandomizedDelaySec=0"
    service = (
        f"# tiffin:{job_id} (written by tiffin schedule --systemd)\n"
        f"[Unit]\nDescription=tiffin backup job {job_id}\n"
        "Wants=network-online.target\nAfter=network-online.target\n\n"
        f"[Service]\nType=oneshot\nExecStart={exec_text(command)}\n"
    )
    timer = (
        f"# tiffin:{job_id} (written by tiffin schedule --systemd)\n"
        f"[Unit]\nDescription=Run tiffin backup job {job_id}\n\n"
        f"[Timer]\nOnCalendar={calendar}\n{delay}\nPersistent=true\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return service, timer

"""Crontab text and times, as pure functions: when a job runs, and tiffin's block of lines.

tiffin's lines stand together at the end of the user's crontab, between two marker comments,
under a `MAILTO=""` of their own. cron applies a variable to every line after it, so the
user's lines above keep their own mail; tiffin mails its own report, without passwords.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from tiffin.errors import UsageError

BEGIN = "# BEGIN tiffin (managed by tiffin schedule; edit with tiffin schedule/unschedule)"
END = "# END tiffin"
MAILTO = 'MAILTO=""'
# Debian's cron (Vixie cron's MAX_COMMAND) keeps 999 bytes of a command and drops the rest.
MAX_COMMAND = 999
_TAG = re.compile(r"\s#\s*tiffin:([A-Za-z0-9]+)\s*$")
_AT = re.compile(r"^(\d{1,2}):(\d{2})$")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# name, lowest, highest, names (their index + lowest is the value)
FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
)
SPECIALS = {
    "@yearly": "yearly",
    "@annually": "yearly",
    "@monthly": "monthly",
    "@weekly": "weekly",
    "@daily": "daily",
    "@midnight": "daily",
    "@hourly": "hourly",
    "@reboot": None,
}


# ---------------------------------------------------------------- times


def random_time() -> str:
    """Return a daily cron time at a random minute and hour, as the seed's recipe chose one."""
    return f"{secrets.randbelow(60)} {secrets.randbelow(24)} * * *"


def at_time(text: str) -> str:
    """Given --at HH:MM, return the daily cron time. Raise UsageError if it is no time of day."""
    m = _AT.match(text.strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise UsageError(f"--at {text!r}: give a time of day as HH:MM, from 00:00 to 23:59")
    return f"{int(m.group(2))} {int(m.group(1))} * * *"


def _number(text: str, field: tuple[str, int, int, tuple[str, ...]]) -> int:
    name, low, high, names = field
    if text.lower() in names:
        return names.index(text.lower()) + (low if name == "month" else 0)
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"the {name} {text!r} is not a number from {low} to {high}")
    return int(text)


def field_values(text: str, field: tuple[str, int, int, tuple[str, ...]]) -> set[int]:
    """Given one field of a cron time and its kind, return the values it names. Raise
    ValueError if it is malformed (lists, ranges, steps and names are understood)."""
    name, low, high, _ = field
    found: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or not 1 <= int(step_text) <= high:
                raise ValueError(f"the step {step_text!r} of the {name} must be 1 to {high}")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = _number(a, field), _number(b, field)
            if first > last:
                raise ValueError(f"the {name} range {span!r} runs backwards")
        elif step_text:
            raise ValueError(f"a step needs * or a range before it, as in */{step_text}")
        else:
            first = last = _number(span, field)
        found.update(range(first, last + 1, step))
    return found


def check_cron(expr: str) -> str:
    """Given a --cron EXPR, return it normalized (single spaces). Raise UsageError naming the
    first field that is wrong: five fields (minute hour day month weekday) or an @word."""
    words = expr.split()
    if len(words) == 1 and words[0].lower() in SPECIALS:
        return words[0].lower()
    if len(words) != 5:
        raise UsageError(
            f"--cron {expr!r}: give five fields, minute hour day-of-month month day-of-week "
            "(e.g. '30 3 * * *'), or one of " + ", ".join(SPECIALS)
        )
    for word, field in zip(words, FIELDS, strict=True):
        try:
            field_values(word, field)
        except ValueError as exc:
            raise UsageError(f"--cron {expr!r}: {exc}") from None
    return " ".join(words)


def when(at: str | None, cron: str | None) -> str | None:
    """Given --at and --cron (either may be None), return the cron time they ask for, or None
    for a random one. Raise UsageError if both are given or one is malformed."""
    if at and cron:
        raise UsageError("give either --at HH:MM or --cron EXPR, not both")
    if at:
        return at_time(at)
    if cron:
        return check_cron(cron)
    return None


def on_calendar(expr: str) -> str:
    """Given a valid cron time, return systemd's OnCalendar= for it. Raise UsageError if systemd
    cannot say the same (@reboot; a day of month and a day of week both restricted)."""
    if expr.startswith("@"):
        special = SPECIALS.get(expr)
        if special is None:
            raise UsageError(f"--systemd cannot run a job {expr}: give a time instead")
        return special
    minute, hour, dom, month, dow = expr.split()
    if dom != "*" and dow != "*":
        raise UsageError(
            "--systemd cannot express a day of month OR a day of week (cron's rule): keep one *"
        )
    days = ""
    if dow != "*":
        values = {v % 7 for v in field_values(dow, FIELDS[4])}
        order = (1, 2, 3, 4, 5, 6, 0)
        days = ",".join(DAYS[v].capitalize() for v in order if v in values) + " "
    parts = [
        _systemd_field(w, f) for w, f in zip((month, dom, hour, minute), FIELDS[3::-1], strict=True)
    ]
    return f"{days}*-{parts[0]}-{parts[1]} {parts[2]}:{parts[3]}:00"


def _systemd_field(text: str, field: tuple[str, int, int, tuple[str, ...]]) -> str:
    out = []
    for item in text.split(","):
        span, _, step = item.partition("/")
        if span == "*":
            span = "*" if not step else str(field[1])
        elif "-" in span:
            a, _, b = span.partition("-")
            span = f"{_number(a, field)}..{_number(b, field)}"
        else:
            span = str(_number(span, field))
        out.append(span + (f"/{step}" if step else ""))
    return ",".join(out)


# ---------------------------------------------------------------- lines


def command_text(argv: Sequence[str]) -> str:
    """Given a command's arguments, return it as a crontab command that cron hands to /bin/sh
    as exactly these arguments. Raise UsageError if cron cannot: a line break or NUL in an
    argument, text that is not UTF-8, or a command longer than cron keeps (it cuts it short).

    Cron ends the line at "\n" only; in the command it turns an unescaped `%` into the end of
    the command and `\\%` into `%`, where a backslash before `\\%` would escape nothing. So each
    `%` stands outside the shell's quotes, as `\\%`, between quoted pieces that never end in a
    backslash outside quotes."""
    for arg in argv:
        bad = next((c for c in ("\n", "\0") if c in arg), None)
        if bad is not None:
            what = "a line break" if bad == "\n" else "a NUL character"
            raise UsageError(f"an argument holds {what}: cron cannot run it ({_shown(arg)})")
        if any("\ud800" <= c <= "\udfff" for c in arg):
            raise UsageError(f"an argument is not UTF-8 text: cron cannot keep it ({_shown(arg)})")
    text = " ".join("\\%".join(shlex.quote(piece) for piece in a.split("%")) for a in argv)
    if len(text.encode()) > MAX_COMMAND:
        raise UsageError(
            f"the scheduled command would be {len(text.encode())} bytes long: cron keeps "
            f"{MAX_COMMAND} at most (shorten the paths or put the job in a config file)"
        )
    return text


def _shown(arg: str) -> str:
    return repr(arg[:40]) + ("..." if len(arg) > 40 else "")


def crontab_lines(text: str) -> list[str]:
    """Given a crontab's text, return its lines with their line ends, split as cron splits
    them: at "\n" only (str.splitlines() also splits at \r, \x0c, \x85, U+2028 ...)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def job_line(time: str, command: str, job_id: str) -> str:
    """Given a cron time, a command text and a job id, return tiffin's tagged crontab line."""
    return f"{time} {command} # tiffin:{job_id}"


def split_line(line: str) -> tuple[str, str, str] | None:
    """Given one line of tiffin's block, return (job id, cron time, command), or None if it is
    not a tagged job line."""
    m = _TAG.search(line)
    if not m or line.lstrip().startswith("#"):
        return None
    body = line[: m.start()].strip()
    words = body.split(None, 1 if body.startswith("@") else 5)
    n = 1 if body.startswith("@") else 5
    if len(words) <= n:
        return None
    return m.group(1), " ".join(words[:n]), words[n]


@dataclass(frozen=True)
class Crontab:
    """A crontab cut in three: the user's text before tiffin's block, the block's own lines
    (without markers and MAILTO, without line ends) and the user's text after it."""

    head: str
    block: tuple[str, ...]
    tail: str
    had_block: bool

    def jobs(self) -> list[tuple[str, str, str]]:
        """Return tiffin's jobs as (job id, cron time, command), in the crontab's order."""
        return [j for j in map(split_line, self.block) if j is not None]

    def with_job(self, job_id: str, line: str) -> Crontab:
        """Return this crontab with LINE in place of job JOB_ID's line, or added at the end."""
        lines = list(self.block)
        for i, old in enumerate(lines):
            found = split_line(old)
            if found and found[0] == job_id:
                lines[i] = line
                break
        else:
            lines.append(line)
        return Crontab(self.head, tuple(lines), self.tail, self.had_block)

    def without(self, job_ids: set[str]) -> Crontab:
        """Return this crontab without the lines of JOB_IDS."""
        kept = tuple(line for line in self.block if (split_line(line) or ("",))[0] not in job_ids)
        return Crontab(self.head, kept, self.tail, self.had_block)


def parse_crontab(text: str) -> Crontab:
    """Given a crontab's text, return it cut around tiffin's block. Raise UsageError if the
    block's markers are broken (then the crontab is left for the user to fix)."""
    lines = crontab_lines(text)
    starts = [i for i, line in enumerate(lines) if line.removesuffix("\n") == BEGIN]
    if not starts:
        if any(line.removesuffix("\n") == END for line in lines):
            raise UsageError(
                f"the crontab holds {END!r} without its BEGIN line: fix it, crontab -e"
            )
        return Crontab(text, (), "", False)
    if len(starts) > 1:
        raise UsageError("the crontab holds two tiffin blocks: remove one (crontab -e)")
    begin = starts[0]
    ends = [i for i in range(begin + 1, len(lines)) if lines[i].removesuffix("\n") == END]
    if not ends:
        raise UsageError(f"the crontab's tiffin block has no {END!r} line: fix it (crontab -e)")
    inner = [line.removesuffix("\n") for line in lines[begin + 1 : ends[0]]]
    block = tuple(line for line in inner if line.strip() != MAILTO)
    return Crontab("".join(lines[:begin]), block, "".join(lines[ends[0] + 1 :]), True)


def render_crontab(tab: Crontab) -> str:
    """Given a cut crontab, return its text: the user's lines byte for byte (a last line without
    a line end gets one, as cron requires), then tiffin's block if it holds any job."""
    user = tab.head + tab.tail
    if not tab.jobs():
        return user
    if user and not user.endswith("\n"):
        user += "\n"
    return user + "\n".join((BEGIN, MAILTO, *tab.block, END)) + "\n"

"""The readers that read back what tiffin writes, as the real programs read it.

- cron: a crontab's lines end at "\\n" only; a job line is five time fields (or an @word)
  separated by blanks, then the command up to the line end (cronie/Vixie cron entry.c,
  load_entry). In the command an unescaped `%` ends it (what follows goes to its stdin, each
  further `%` a line break) and `\\%` is a `%`; a backslash before anything else stays
  (do_command.c, child_process). cron then runs `$SHELL -c COMMAND` with HOME, LOGNAME,
  PATH=/usr/bin:/bin and SHELL=/bin/sh.
- systemd: ExecStart= per systemd.syntax(7) and systemd.service(5): `%%` is a `%` (other
  specifiers are not written by tiffin and are refused here), words split at blanks, double
  or single quotes group, C escapes are unescaped inside and outside quotes, then `$$` is
  a `$`.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

_BLANKS = re.compile(rb"[ \t]+")
PRINT_ARGV = (
    "#!/usr/bin/python3 -I\nimport os, sys\n"
    "sys.stdout.buffer.write(b''.join(os.fsencode(a) + b'\\0' for a in sys.argv[1:]))\n"
)


def cron_entries(text: bytes) -> list[tuple[bytes, bytes]]:
    """Given a crontab, return each job line's (time, command) as cron reads them."""
    lines = text.split(b"\n")
    assert lines[-1] == b"", "cron refuses a last line without its line end"
    entries = []
    for raw in lines[:-1]:
        line = raw.lstrip(b" \t")
        if not line or line.startswith(b"#") or re.match(rb"[A-Za-z_][A-Za-z0-9_]*\s*=", line):
            continue  # blank, comment, or an environment setting
        n = 1 if line.startswith(b"@") else 5
        words = _BLANKS.split(line, maxsplit=n)
        assert len(words) == n + 1, f"cron cannot read the line {raw!r}"
        entries.append((b" ".join(words[:n]), words[n]))
    return entries


def cron_command(command: bytes) -> tuple[bytes, bytes]:
    """Given a command as read from a crontab line, return (what sh -c runs, its stdin), as
    cron's child_process() cuts it at the first unescaped `%`."""
    out = bytearray()
    escaped = False
    for i, ch in enumerate(command):
        if escaped:
            if ch == ord("%"):
                out[-1] = ch  # \% -> %
            else:
                out.append(ch)
            escaped = False
            continue
        if ch == ord("%"):
            rest = command[i + 1 :]
            return bytes(out), rest
        out.append(ch)
        escaped = ch == ord("\\")
    return bytes(out), b""


def cron_env(home: Path | str) -> dict[str, str]:
    return {"HOME": str(home), "LOGNAME": "root", "PATH": "/usr/bin:/bin", "SHELL": "/bin/sh"}


def run_as_cron(
    command: bytes, home: Path | str, timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    """Run a crontab command as cron does: its % cut, then /bin/sh -c in cron's environment,
    from HOME, its stdin the text after a %."""
    run, stdin = cron_command(command)
    return subprocess.run(
        ["/bin/sh", "-c", run],
        env=cron_env(home),
        cwd=home,
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )


def argv_printer(folder: Path) -> str:
    """Write a program that prints each of its arguments ended by a NUL; return its path."""
    path = folder / "print-argv"
    path.write_text(PRINT_ARGV)
    path.chmod(0o755)
    return str(path)


def printed_argv(out: bytes) -> list[str]:
    assert out.endswith(b"\0") or not out
    return [os.fsdecode(a) for a in out.split(b"\0")[:-1]]


# ---------------------------------------------------------------- systemd

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPES.update({"\\": "\\", '"': '"', "'": "'", "s": " "})


def _unescape(text: str, i: int) -> tuple[str, int]:
    """Given TEXT with a backslash at I, return what the escape means and where it ends."""
    c = text[i + 1]
    if c in _ESCAPES:
        return _ESCAPES[c], i + 2
    for letter, size in (("x", 2), ("u", 4), ("U", 8)):
        if c == letter:
            code = int(text[i + 2 : i + 2 + size], 16)
            assert code != 0, "systemd refuses \\x00"
            return chr(code), i + 2 + size
    if c in "01234567":
        return chr(int(text[i + 1 : i + 4], 8)), i + 4
    raise AssertionError(f"systemd would warn of the unknown escape \\{c}")


def exec_start_argv(value: str) -> list[str]:
    """Given an ExecStart= value, return the argv systemd runs."""
    assert re.fullmatch(r"(?:[^%]|%%)*", value), "a % other than %% is a specifier"
    value = value.replace("%%", "%")
    words: list[str] = []
    i, n = 0, len(value)
    while True:
        while i < n and value[i] in " \t":
            i += 1
        if i == n:
            return [_dollars(w) for w in words]
        word, quote = "", ""
        while i < n and (quote or value[i] not in " \t"):
            c = value[i]
            if c == "\\":
                got, i = _unescape(value, i)
                word += got
            elif quote and c == quote:
                quote, i = "", i + 1
            elif not quote and c in "'\"":
                quote, i = c, i + 1
            else:
                word, i = word + c, i + 1
        assert not quote, "unbalanced quoting"
        words.append(word)


def _dollars(word: str) -> str:
    parts = word.split("$$")
    assert not any("$" in p for p in parts), f"systemd would expand a variable in {word!r}"
    return "$".join(parts)

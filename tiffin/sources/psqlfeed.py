"""Feeding a plain PostgreSQL dump to psql so that it can run no backslash command.

psql runs a backslash command wherever it meets one, even mid-line: `\\!` runs a program,
`\\copy ... program`, `\\o |`, `\\g |` too, and `\\copy`, `\\o FILE`, `\\i`, `\\w`, `\\s`...
read or write files here. So psql gets `\\restrict KEY` (psql 15.14, 16.10, 17.6 and later)
first, with a random KEY the dump cannot know: from then on it refuses every backslash
command but `\\unrestrict KEY`, wherever it stands.

Three commands of a genuine dump are handled by tiffin itself, when a whole line outside
COPY data: pg_dump's own `\\restrict K` / `\\unrestrict K` are left out (tiffin's
restriction stands for the whole load), and, when the caller allows (a pg_dumpall dump),
`\\connect DB` ends this psql and starts a restricted one on database DB of the same server:
only a database name is taken from it, never a host or any other connection setting.
Everything else reaches psql as it is; a line tiffin does not read (a longer one) is
refused by psql, if it is a backslash command.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tiffin.engine import process
from tiffin.engine.streams import BLOCK, Reader
from tiffin.errors import BackupFailed

LONG = 1 << 20  # a line longer than this is data, streamed through unread
BACKSLASH = ord("\\")
REFUSED = "backslash commands are restricted"
_COPY = re.compile(rb"^COPY\s.*\bFROM stdin;\s*$")
_META = re.compile(rb"^\\(connect|c|restrict|unrestrict)(?:[ \t]+(.*?))?[ \t\r]*\n?$", re.S)
_checked: dict[str, bool] = {}


def check_psql(psql: str) -> None:
    """Raise BackupFailed (one sentence) unless PSQL has \\restrict."""
    if psql not in _checked:
        _checked[psql] = "\\restrict" in process.run((psql, "--help=commands"), name="psql")
    if not _checked[psql]:
        raise BackupFailed(
            f"{psql} cannot be kept from running the programs and files a dump may name (it "
            "lacks \\restrict, new in psql 15.14, 16.10 and 17.6): install a newer "
            "postgresql-client before loading a dump"
        )


def connect_target(arg: bytes) -> str | None:
    """Given the argument of a psql \\connect line as pg_dump writes it (NAME, "NAME" or
    -reuse-previous=on "dbname='NAME'"), return the database name, or None if unknown."""
    text = arg.decode("utf-8", "replace")
    if text.startswith("-reuse-previous=on "):
        text = text[len("-reuse-previous=on ") :].strip()
    quoted = len(text) >= 2 and text[0] == text[-1] == '"'
    if quoted:
        text = text[1:-1].replace('""', '"')
    if "=" in text:  # psql reads it as a connection string: only dbname=... is pg_dump's
        m = re.fullmatch(r"dbname=(?:'((?:[^'\\]|\\.)*)'|([^\s'\\]+))", text)
        if m is None:
            return None
        return re.sub(r"\\(.)", r"\1", m[1]) if m[1] is not None else m[2]
    if quoted or re.fullmatch(r"[^\s\"'\\-][^\s\"'\\]*", text):
        return text
    return None


def pieces(reader: Reader, follow_connect: bool) -> Iterator[bytes | str]:
    """Given a reader of a plain dump, yield its bytes for psql, and a database name (str)
    where a \\connect line switches to it (see the module), in bounded memory."""
    buf = bytearray()
    passing = copying = False

    def line(part: bytes) -> Iterator[bytes | str]:
        nonlocal copying
        if copying:
            copying = part.rstrip(b"\r\n") != b"\\."
        elif m := _META.match(part):
            if m[1] in (b"restrict", b"unrestrict"):
                return
            db = connect_target(m[2] or b"") if follow_connect else None
            if db is not None:
                yield db
                return
        elif _COPY.match(part):
            copying = True
        yield part

    def lines(end: int) -> Iterator[bytes | str]:
        """Yield buf[:end] (whole lines): each line that may matter (a backslash command, a
        COPY, the end of COPY data) read on its own, and the runs of lines between them
        as they are, in one piece each (psql reads them the same either way)."""
        pos = 0
        while pos < end:
            if buf[pos] == BACKSLASH or (not copying and buf.startswith(b"COPY", pos)):
                nl = buf.index(b"\n", pos, end)
                yield from line(bytes(buf[pos : nl + 1]))
                pos = nl + 1
                continue
            cut = buf.find(b"\n\\", pos, end)
            if not copying:
                copy_at = buf.find(b"\nCOPY", pos, cut if cut >= 0 else end)
                cut = copy_at if copy_at >= 0 else cut
            cut = end if cut < 0 else cut + 1
            yield bytes(buf[pos:cut])
            pos = cut

    while data := reader.read(BLOCK):
        buf += data
        start = 0
        if passing:  # the rest of a line too long to read: through as it is, to its end
            nl = buf.find(b"\n")
            if nl < 0:
                yield bytes(buf)
                buf.clear()
                continue
            yield bytes(buf[: nl + 1])
            passing, start = False, nl + 1
        end = buf.rfind(b"\n") + 1
        if end > start:
            del buf[:start]
            yield from lines(end - start)
            start = end - start
        del buf[:start]
        if len(buf) > LONG:
            passing = True
            yield bytes(buf)
            buf.clear()
    if buf and passing:
        yield bytes(buf)
    elif buf:
        yield from line(bytes(buf))


@dataclass
class Fed:
    """What psql said over a whole load: the first non-zero status, its error lines."""

    returncode: int = 0
    errors: list[str] = field(default_factory=list)
    tail: str = ""

    @property
    def refused(self) -> bool:
        return any(REFUSED in ln for ln in self.errors)


def refusal() -> BackupFailed:
    return BackupFailed(
        "the dump holds a psql backslash command (such as \\! or \\copy, which run programs "
        "or touch files on this machine): psql refused it, and nothing of it ran"
    )


def feed(
    cmd: tuple[str, ...],
    reader: Reader,
    env_of: Callable[[str], dict[str, str]],
    first_db: str,
    follow_connect: bool,
    server: process.Server | None = None,
) -> Fed:
    """Run psql CMD restricted (see the module) on database FIRST_DB with READER's dump on its
    stdin, and a new one on each database a \\connect names (when FOLLOW_CONNECT); ENV_OF
    gives a database's environment for psql. Return what psql said. If reading fails, psql
    is killed and the error propagates; with SERVER, a psql that takes no byte for
    process.patience() seconds while SERVER does not answer is killed (process.Stalled)."""
    check_psql(cmd[0])
    fed = Fed()
    child: process.Child | None = None

    def start(db: str) -> process.Child:
        c = process.Child(
            cmd,
            name="psql",
            env=env_of(db),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            keep=(REFUSED,),
            server=server,
        )
        write(c, b"\\restrict " + secrets.token_hex(24).encode() + b"\n")
        return c

    def write(c: process.Child, data: bytes) -> bool:
        assert c.proc.stdin is not None
        c.progressed()
        try:
            c.proc.stdin.write(data)
        except BrokenPipeError:
            return False  # psql ended (ON_ERROR_STOP): the rest is not read
        c.progressed()
        return True

    def end(c: process.Child) -> None:
        assert c.proc.stdin is not None
        try:
            c.proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = c.wait()
        c.raise_if_stalled()
        fed.returncode = fed.returncode or rc
        fed.errors += list(c.error_lines)
        fed.tail = c.stderr_tail

    try:
        child = start(first_db)
        for piece in pieces(reader, follow_connect):
            if isinstance(piece, str):
                end(child)
                child = None
                child = start(piece)
            elif not write(child, piece):
                break
        end(child)
    except BaseException:
        if child is not None:
            child.abort()
        raise
    return fed

"""The drill's scratch databases on a MySQL/MariaDB or PostgreSQL server.

A dump is loaded under scratch names, never its own: every database-level line of the dump
is rewritten on its way to the client. MySQL: `CREATE/ALTER/DROP DATABASE` and `USE`.
PostgreSQL: `\\connect`, and `CREATE/ALTER/DROP/COMMENT ON/GRANT/REVOKE ... DATABASE`. A
database the dump enters without creating it (pg_dumpall's postgres and template1, a
single-database dump) is created under its scratch name first. A database-level line that
cannot be rewritten stops the drill before it reaches the server. Besides:

- pg_dumpall's global part (roles, role settings and memberships, tablespaces: everything
  before its first `\\connect` but SET lines) is left out: a drill never creates or alters a
  role, so it cannot reset a live role's password to its backup-time value. GRANTs and
  owners naming a role this server lacks are then the only errors a drill forgives;
- MySQL events are created DISABLED, so that none runs in the scratch copy.

The dump's own statements reach the data only through unqualified names. A view, trigger or
routine that names another database explicitly (`shop.items`) still names the real one: such
a view is created against the real database, and a trigger or routine is created (never run:
triggers are created after their table's rows are loaded, and nothing is called).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol

from tiffin import process
from tiffin.errors import BackupFailed, ToolFailed
from tiffin.job import DBConn
from tiffin.sources.mysql import with_secret
from tiffin.sources.postgresql import pg_env
from tiffin.streams import BLOCK, IterReader, buffered

LONG = 1 << 20  # a line longer than this is data, streamed through unread


class Rewriter(Protocol):
    def line(self, line: bytes) -> bytes:
        """Given one whole line (with its newline), return what the client gets instead."""
        ...

    def long(self, head: bytes) -> None:
        """Given the first LONG bytes of a longer line (streamed through as they are), raise
        BackupFailed if it is a line that must be rewritten."""
        ...


def rewritten(reader: IO[bytes], rw: Rewriter) -> IO[bytes]:
    """Given a reader of a plain dump and a Rewriter, return a reader of the dump with every
    line (up to LONG bytes) replaced by what the Rewriter says; longer lines pass unchanged
    in bounded memory."""

    def chunks() -> Iterator[bytes]:
        buf = bytearray()
        passing = False  # inside a long line
        while data := reader.read(BLOCK):
            buf += data
            start = 0
            while (nl := buf.find(b"\n", start)) >= 0:
                part = bytes(buf[start : nl + 1])
                yield part if passing else rw.line(part)
                passing, start = False, nl + 1
            del buf[:start]
            if passing or len(buf) > LONG:
                if not passing:
                    rw.long(bytes(buf[:LONG]))
                passing = True
                yield bytes(buf)
                buf.clear()
        if buf:
            yield bytes(buf) if passing else rw.line(bytes(buf))

    return buffered(IterReader(chunks(), on_close=reader.close))


def _cannot(line: bytes) -> BackupFailed:
    text = line[:120].decode("utf-8", "replace").strip()
    return BackupFailed(
        f"the dump holds a line the drill cannot redirect to a scratch database: {text}"
    )


_MY_DB = re.compile(rb"^(?:/\*!\d+\s*)?(CREATE|ALTER|DROP)\s+DATABASE\b")
_MY_USE = re.compile(rb"^USE\s+`((?:[^`]|``)+)`\s*;\s*$")
_MY_IDENT = re.compile(rb"`((?:[^`]|``)+)`")
_MY_EVENT = re.compile(rb"^(/\*!50106 CREATE\*/.*?\bON COMPLETION (?:NOT )?PRESERVE )ENABLE\b")


def my_ident(name: str) -> bytes:
    return b"`" + name.replace("`", "``").encode() + b"`"


class MySQLRenamer:
    """Rewrites a mysqldump's database-level lines to scratch names (see the module)."""

    def __init__(self, scratch: Callable[[str], str], created: set[str]) -> None:
        self.scratch, self.created = scratch, created

    def line(self, line: bytes) -> bytes:
        if m := _MY_USE.match(line):
            name = self.scratch(m[1].replace(b"``", b"`").decode())
            head = b""
            if name not in self.created:
                head = b"CREATE DATABASE IF NOT EXISTS " + my_ident(name) + b";\n"
                self.created.add(name)
            return head + b"USE " + my_ident(name) + b";\n"
        if m := _MY_DB.match(line):
            ident = _MY_IDENT.search(line, m.end())
            if ident is None:
                raise _cannot(line)
            name = self.scratch(ident[1].replace(b"``", b"`").decode())
            if m[1] == b"CREATE":
                self.created.add(name)
            return line[: ident.start()] + my_ident(name) + line[ident.end() :]
        if m := _MY_EVENT.match(line):
            return m[1] + b"DISABLE" + line[m.end() :]
        return line

    def long(self, head: bytes) -> None:
        if _MY_DB.match(head) or head.startswith(b"USE ") or _MY_EVENT.match(head):
            raise _cannot(head)


_PG_CONNECT = re.compile(rb"^\\(?:connect|c)\s+(.*?)\s*$")
_PG_DB = re.compile(
    rb"^(?:CREATE|DROP|ALTER|COMMENT ON|GRANT|REVOKE|SECURITY LABEL)\b.*?\bDATABASE\s+"
    rb'(?:IF EXISTS\s+)?("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
)
_PG_COPY = re.compile(rb"^COPY\s.*\bFROM stdin;\s*$")
_PG_KEEP = (b"--", b"SET ", b"SELECT pg_catalog.set_config", b"\\restrict", b"\\unrestrict")


def pg_ident(name: str) -> bytes:
    return b'"' + name.replace('"', '""').encode() + b'"'


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


class PostgresRenamer:
    """Rewrites a pg_dump/pg_dumpall script's database-level lines to scratch names, and
    leaves out pg_dumpall's global part (see the module)."""

    def __init__(self, scratch: Callable[[str], str], created: set[str], cluster: bool) -> None:
        self.scratch, self.created = scratch, created
        self.preamble = cluster
        self.copying = False

    def line(self, line: bytes) -> bytes:
        if self.copying:
            self.copying = line not in (b"\\.\n", b"\\.")
            return line
        if m := _PG_CONNECT.match(line):
            db = connect_target(m[1])
            if db is None:
                raise _cannot(line)
            self.preamble = False
            name = self.scratch(db)
            head = b""
            if name not in self.created:
                head = b"CREATE DATABASE " + pg_ident(name) + b";\n"
                self.created.add(name)
            return head + b"\\connect " + name.encode() + b"\n"
        if m := _PG_DB.match(line):
            raw = m[1]
            quoted = raw[1:-1].replace(b'""', b'"') if raw.startswith(b'"') else raw
            name = self.scratch(quoted.decode())
            if line.startswith(b"CREATE"):
                self.created.add(name)
            return line[: m.start(1)] + pg_ident(name) + line[m.end(1) :]
        if self.preamble and line.strip() and not line.startswith(_PG_KEEP):
            return b""  # a role, membership or tablespace of the cluster: not the drill's
        if _PG_COPY.match(line):
            self.copying = True
        return line

    def long(self, head: bytes) -> None:
        if self.copying:
            return
        if (
            _PG_CONNECT.match(head.split(b"\n", 1)[0])
            or _PG_DB.match(head)
            or head.startswith(b"COPY")
        ):
            raise _cannot(head)


# ---------------------------------------------------------------- the servers


class MySQLScratch:
    """Scratch databases PREFIX_1, PREFIX_2 ... on a MySQL/MariaDB server."""

    def __init__(self, conn: DBConn, prefix: str) -> None:
        self.conn, self.prefix = conn, prefix
        self.client = process.which("mariadb", "mysql") or "mysql"
        self.names: dict[str, str] = {}
        self.created: set[str] = set()

    def scratch(self, db: str) -> str:
        """Given a database of the dump, return its scratch name (the same one each time)."""
        return self.names.setdefault(db, f"{self.prefix}_{len(self.names) + 1}")

    def _sql(self, sql: str, *args: str) -> list[list[str]]:
        cmd, fds = with_secret(self.client, self.conn, ("-N", "-B", *args))
        out = process.run(cmd, name="mysql", input=sql.encode(), pass_fds=fds)
        return [ln.split("\t") for ln in out.splitlines() if ln]

    def load(self, reader: IO[bytes], details: dict[str, Any]) -> None:
        """Given a reader of a plain mysql dump and its manifest's details, load it into
        scratch databases. Raise ToolFailed (quoting the client) if the load fails."""
        args: tuple[str, ...] = ("--binary-mode",)
        if details.get("single_database"):
            name = self.scratch(str(details["databases"][0]))
            self._sql(f"CREATE DATABASE {my_ident(name).decode()}")
            self.created.add(name)
            args += ("--database", name)
        stream = rewritten(reader, MySQLRenamer(self.scratch, self.created))
        cmd, fds = with_secret(self.client, self.conn, args)
        child = process.feed(cmd, stream, name="mysql", pass_fds=fds)
        if child.proc.returncode != 0:
            raise ToolFailed("mysql", child.proc.returncode, child.stderr_tail)

    def counts(self, db: str) -> dict[str, int] | None:
        """Given a database of the dump, return {table: rows} of its scratch copy, or None
        if the dump never created it."""
        name = self.names.get(db)
        if name is None or not self._sql(
            f"SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'"  # noqa: S608
        ):
            return None
        tables = [
            bytes.fromhex(r[0]).decode()
            for r in self._sql(
                "SELECT HEX(TABLE_NAME) FROM information_schema.TABLES WHERE "  # noqa: S608
                f"TABLE_SCHEMA = '{name}' AND TABLE_TYPE = 'BASE TABLE'"
            )
        ]
        counts: dict[str, int] = {}
        for i in range(0, len(tables), 200):
            batch = tables[i : i + 200]
            sql = " UNION ALL ".join(
                f"SELECT {n}, COUNT(*) FROM {my_ident(name).decode()}.{my_ident(t).decode()}"  # noqa: S608
                for n, t in enumerate(batch)
            )
            for n, c in self._sql(sql):
                counts[batch[int(n)]] = int(c)
        return counts

    def remove(self) -> None:
        """Drop every scratch database of this drill. Raise ToolFailed if one cannot be."""
        left = [
            r[0]
            for r in self._sql(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE "  # noqa: S608
                f"LEFT(SCHEMA_NAME, {len(self.prefix)}) = '{self.prefix}'"
            )
        ]
        if left:
            self._sql("".join(f"DROP DATABASE IF EXISTS {my_ident(n).decode()};" for n in left))


_BENIGN_PG = re.compile(r'role "[^"]*" does not exist')


class PostgresScratch:
    """Scratch databases PREFIX (where psql starts), PREFIX_1 ... on a PostgreSQL server."""

    def __init__(self, conn: DBConn, prefix: str) -> None:
        self.conn, self.prefix = conn, prefix
        self.psql = process.which("psql") or "psql"
        self.names: dict[str, str] = {}
        self.created: set[str] = set()

    def scratch(self, db: str) -> str:
        return self.names.setdefault(db, f"{self.prefix}_{len(self.names) + 1}")

    def _sql(self, sql: str, db: str = "postgres") -> list[list[str]]:
        out = process.run(
            (self.psql, "-X", "-w", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"),
            name="psql",
            input=sql.encode(),
            env=pg_env(self.conn, db),
        )
        return [ln.split("\t") for ln in out.splitlines() if ln]

    def load(self, reader: IO[bytes], details: dict[str, Any]) -> None:
        """Given a reader of a plain pgsql dump and its manifest's details, load it into
        scratch databases. Raise ToolFailed (quoting psql) if the load fails."""
        start = self.prefix
        if details.get("single_database"):
            start = self.scratch(str(details["databases"][0]))
        self._sql(f"CREATE DATABASE {pg_ident(start).decode()}")
        self.created.add(start)
        rw = PostgresRenamer(self.scratch, self.created, cluster=bool(details.get("roles")))
        cmd = (self.psql, "-X", "-w", "-q")
        child = process.feed(cmd, rewritten(reader, rw), name="psql", env=pg_env(self.conn, start))
        errors = [ln for ln in child.error_lines if "ERROR:" in ln and not _BENIGN_PG.search(ln)]
        if child.proc.returncode != 0 or errors:
            tail = "\n".join(errors[-5:]) or child.stderr_tail
            raise ToolFailed("psql", child.proc.returncode or 3, tail)

    def counts(self, db: str) -> dict[str, int] | None:
        name = self.names.get(db)
        if name is None or not self._sql(
            f"SELECT 1 FROM pg_database WHERE datname = '{name}'"  # noqa: S608
        ):
            return None
        rows = self._sql(
            "SELECT n.nspname || '.' || c.relname, (xpath('/row/c/text()', query_to_xml("
            "format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, "
            "'')))[1]::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', "
            "'information_schema') AND n.nspname NOT LIKE 'pg\\_%'",
            name,
        )
        return {r[0]: int(r[1]) for r in rows}

    def remove(self) -> None:
        left = self._sql(
            "SELECT datname FROM pg_database WHERE "  # noqa: S608
            f"left(datname, {len(self.prefix)}) = '{self.prefix}'"
        )
        for (name,) in left:
            self._sql(f"DROP DATABASE IF EXISTS {pg_ident(name).decode()} WITH (FORCE)")

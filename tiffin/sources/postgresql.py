"""PostgreSQL (and PostGIS) through pg_dumpall / pg_dump and psql.

The password reaches children only as PGPASSWORD in the child's own environment.
A pg_dump older than the server refuses to run: the matching client is picked among
Debian's /usr/lib/postgresql/N/bin, else the run fails at once naming both versions.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Iterator
from typing import Any

from tiffin.engine import process
from tiffin.engine.streams import BLOCK, IterReader, Reader, buffered
from tiffin.errors import BackupFailed, TiffinError, ToolFailed
from tiffin.job import DBConn, RestoreJob, SourceSpec
from tiffin.sources import pginventory, psqlfeed
from tiffin.sources.base import address
from tiffin.sources.beside import COUNTS_LOST, Beside
from tiffin.sources.pgclients import client_versions, newest_psql, pick_client, pick_major
from tiffin.sources.pginventory import Inventory, count_sql, inventory_sql, parse

# Errors that a pg_dumpall script meets on any live server and that do no harm.
BENIGN = (re.compile(r'role "[^"]+" already exists'),)


def pg_env(conn: DBConn, database: str | None = None) -> dict[str, str]:
    """Given a connection, return the libpq variables for the child's environment only."""
    env: dict[str, str] = {}
    if conn.host:
        env["PGHOST"] = conn.host
    if conn.port:
        env["PGPORT"] = str(conn.port)
    if conn.user:
        env["PGUSER"] = conn.user
    if conn.password is not None:
        env["PGPASSWORD"] = conn.password
    if database:
        env["PGDATABASE"] = database
    # libpq's connect_timeout (2 s at least) covers a server that accepts and never answers.
    env["PGCONNECT_TIMEOUT"] = str(max(2, math.ceil(process.patience())))
    return env


def server_of(conn: DBConn, psql: str = "psql") -> process.Server:
    """Given a connection, return the server every child waits on, with a ping (a fresh
    session's SELECT 1) that tells a busy server from a hung one."""

    def ping() -> None:
        process.run(
            (psql, "-X", "-w", "-q", "-A", "-t", "-c", "SELECT 1"),
            name="psql",
            env=pg_env(conn, "postgres"),
        )

    where = address(conn.host, conn.port, None)
    return process.Server(f"the PostgreSQL server at {where}", ping)


def dump_commands(
    dumpall: str, dump: str, databases: tuple[str, ...], superuser: bool
) -> list[tuple[str, ...]]:
    """Given the client paths, the databases (none: all, with roles) and whether we are a
    superuser, return the commands whose outputs, concatenated, are the backup."""
    if not databases:
        cmd = [dumpall, "-w", "--quote-all-identifiers"]
        if not superuser:
            cmd.append("--no-role-passwords")
        return [tuple(cmd)]
    if len(databases) == 1:
        # No CREATE DATABASE, so that it can be restored under any name.
        return [
            (dump, "-w", "--clean", "--if-exists", "--quote-all-identifiers", "-d", databases[0])
        ]
    return [
        (dump, "-w", "--create", "--clean", "--if-exists", "--quote-all-identifiers", "-d", db)
        for db in databases
    ]


def _clients(dump: str) -> tuple[str, str]:
    """Given the path of a pg_dump, return that of its pg_dumpall beside it, and its own."""
    return os.path.join(os.path.dirname(dump), "pg_dumpall"), dump


def _psql(conn: DBConn, database: str, sql: str, psql: str = "psql") -> list[list[str]]:
    out = process.run(
        (psql, "-X", "-w", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"),
        name="psql",
        input=sql.encode(),
        env=pg_env(conn, database),
        server=server_of(conn, psql),
    )
    return [line.split("\t") for line in out.split("\n") if line]


class PostgresSource:
    what = "pgsql"

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self._cmds: list[tuple[str, ...]] = []
        self._children: list[process.Child] = []
        self._psql = newest_psql()
        self._scope: list[str] = []
        self._first: tuple[str, Inventory] | None = None
        self._side: Beside[tuple[dict[str, Inventory], str | None]] | None = None
        self._late: list[str] = []
        self._env = pg_env(spec.conn, "postgres")
        self._server = server_of(spec.conn, self._psql)
        self._early: io.BufferedReader | None = None  # the first dump, started by prepare()

    def prepare(self) -> dict[str, Any]:
        """Read the server's version, its databases and the inventory of the database it
        connects to, in one psql session, while the dump starts beside it. The other
        databases in scope are read, and every row counted, beside the dump (see open())."""
        home = self.spec.databases[0] if len(self.spec.databases) == 1 else "postgres"
        clients = client_versions("pg_dump")
        # The dump starts now, beside this session, with the newest client and as a superuser
        # would run it: the session then only confirms its command line (one process start,
        # not two in turn, before the first byte). A command it does not confirm (an older
        # server with its own client installed, a user who is no superuser) is killed unread
        # and the right one started instead.
        early = (
            self._start(
                dump_commands(*_clients(clients[max(clients)]), self.spec.databases, True)[0]
            )
            if clients
            else None
        )
        try:
            return self._prepare(home, clients, early)
        except BaseException:
            if early is not None:
                self._drop(early)
            raise

    def _drop(self, early: io.BufferedReader) -> None:
        """Kill a dump started ahead that is not the one to run: nothing of it was read."""
        early.close()
        self._children.remove(process.child_of(early))

    def _start(self, cmd: tuple[str, ...]) -> io.BufferedReader:
        reader = process.spawn_reader(
            cmd, name=os.path.basename(cmd[0]), env=self._env, server=self._server
        )
        self._children.append(process.child_of(reader))
        return reader

    def _prepare(
        self, home: str, clients: dict[int, str], early: io.BufferedReader | None
    ) -> dict[str, Any]:
        conn = self.spec.conn
        sql = (  # noqa: S608 - nothing formatted in
            "SELECT 'v', current_setting('server_version_num'), "
            "current_setting('server_version'), rolsuper FROM pg_roles "
            "WHERE rolname = current_user;\n"
            "SELECT 'd', datname FROM pg_database "
            "WHERE datallowconn AND NOT datistemplate ORDER BY 2;\n"
        ) + inventory_sql(pginventory.COUNT_BYTES, self.spec.counts, False)
        try:
            rows = _psql(conn, home, sql, self._psql)
        except ToolFailed as exc:
            if f'database "{home}" does not exist' in exc.stderr_tail:
                raise BackupFailed(f"the server has no database named {home}") from None
            raise
        head = next(r for r in rows if r[0] == "v")
        num, version, superuser = int(head[1]), head[2], head[3] == "t"
        major = num // 10000
        dbs = [r[1] for r in rows if r[0] == "d"]
        missing = [d for d in self.spec.databases if d not in dbs]
        if missing:
            raise BackupFailed(f"the server has no database named {', '.join(missing)}")
        self._scope = list(self.spec.databases) or dbs
        self._first = (home, parse(rows)) if home in self._scope else None
        dump = pick_client("pg_dump", major, clients)
        self._cmds = dump_commands(*_clients(dump), self.spec.databases, superuser)
        if early is not None:
            if process.child_of(early).cmd == self._cmds[0]:
                self._early = early
            else:
                self._drop(early)
        return {
            "server": "pgsql",
            "server_version": version,
            "databases": self._scope,
            "single_database": len(self.spec.databases) == 1,
            "roles": not self.spec.databases,
            "consistency": "snapshot per database",
            **({"counts": self.spec.counts} if self.spec.counts != "exact" else {}),
            "dump_tool": os.path.basename(self._cmds[0][0])
            + " "
            + str(pick_major(self._cmds[0][0])),
        }

    def _inventories(self) -> tuple[dict[str, Inventory], str | None]:
        """Return {db: Inventory} of every database in scope, with its exact counts, and why
        the counts could not be taken (None if they were): one psql session per database.
        Raise what psql raised if a database's tables cannot be read at all."""
        mode, budget = self.spec.counts, pginventory.COUNT_BYTES
        found: dict[str, Inventory] = {}
        lost: str | None = None
        first = [self._first[0]] if self._first is not None else []
        for db in first + [d for d in self._scope if d not in first]:
            if self._first is not None and self._first[0] == db:
                inv = self._first[1]
                if lost is None and inv.exact:
                    try:
                        for sql in count_sql(inv.exact):
                            for i, count in _psql(self.spec.conn, db, sql, self._psql):
                                inv.counted[inv.exact[int(i)][0]] = int(count)
                    except TiffinError as exc:
                        lost = str(exc)
            else:
                try:
                    inv = self._read(db, inventory_sql(budget, mode, lost is None))
                except TiffinError as exc:  # the counts failed, or the session did
                    lost = lost or str(exc)
                    inv = self._read(db, inventory_sql(budget, mode, False))
            budget -= inv.used
            found[db] = inv
        return {db: found[db] for db in self._scope}, lost

    def _read(self, db: str, sql: str) -> Inventory:
        return parse(_psql(self.spec.conn, db, sql, self._psql))

    def open(self) -> Reader:
        def chunks() -> Iterator[bytes]:
            for i, cmd in enumerate(self._cmds):
                early, self._early = self._early, None
                reader = early if i == 0 and early is not None else self._start(cmd)
                try:
                    while True:
                        data = reader.read(BLOCK)
                        if not data:
                            break
                        yield data
                finally:
                    reader.close()

        self._side = Beside(self._inventories, "tiffin-pgsql-inventory")
        return buffered(IterReader(chunks()))

    def finish(self) -> dict[str, Any]:
        """Return the extensions, tables and row counts read beside the dump; without the
        counts (and with a warning) if they could not be taken. Raise BackupFailed if the
        tables of a database could not be read."""
        if self._side is None:
            return {}
        value, error = self._side.join()
        if value is None:
            raise BackupFailed(f"cannot read the tables of the databases dumped: {error}")
        found, lost = value
        details: dict[str, Any] = {
            "extensions": {
                db: ext
                for db, inv in found.items()
                if (ext := {k: v for k, v in inv.extensions.items() if k != "plpgsql"})
            },
            "tables": {db: inv.tables for db, inv in found.items()},
        }
        if self.spec.counts == "exact" and lost is None:
            details["rows"] = {db: inv.counted for db, inv in found.items()}
        elif lost is not None:
            self._late.append(f"{COUNTS_LOST}: {lost}")
        estimated = {db: inv.estimated for db, inv in found.items() if inv.estimated}
        if estimated:
            details["rows_estimated"] = estimated
        return details

    def warnings(self) -> list[str]:
        tool = [
            ln
            for c in self._children
            for ln in c.stderr_tail.splitlines()
            if "warning" in ln.lower()
        ]
        return tool + self._late


class PostgresLoader:
    """Loads a pgsql backup with psql."""

    def __init__(self, job: RestoreJob) -> None:
        self.job = job
        self.conn = job.source.conn
        self._psql = newest_psql()
        self.server = server_of(self.conn, self._psql)

    def check(self, details: dict[str, Any]) -> None:
        if details.get("server") != "pgsql":
            raise BackupFailed(
                "this backup is not a PostgreSQL dump: restore it --into "
                + str(details.get("server", "dir"))
            )
        available = {
            r[0]
            for r in _psql(
                self.conn, "postgres", "SELECT name FROM pg_available_extensions", self._psql
            )
        }
        for db, exts in (details.get("extensions") or {}).items():
            for name, version in exts.items():
                if name not in available:
                    raise BackupFailed(
                        f"the destination server lacks the extension {name} (version {version} "
                        f"in database {db} of the backup): install it before restoring"
                    )
        if not details.get("single_database") and not self.job.source.databases:
            existing = {
                r[0]
                for r in _psql(self.conn, "postgres", "SELECT datname FROM pg_database", self._psql)
            }
            clash = [
                d
                for d in details.get("databases", [])
                if d in existing and d not in ("postgres", "template1")
            ]
            if clash and details.get("roles"):
                raise BackupFailed(
                    f"the destination server already has the database(s) {', '.join(clash)}: "
                    "drop them first, or restore one with --database NAME"
                )

    def _env(self, database: str) -> dict[str, str]:
        return pg_env(self.conn, database)

    def _target_db(self, details: dict[str, Any]) -> str | None:
        if not details.get("single_database"):
            if self.job.source.databases:
                raise BackupFailed(
                    "--database NAME restores a single-database backup; this one holds "
                    + (", ".join(details.get("databases", [])) or "all databases")
                )
            return None
        return (
            self.job.source.databases[0]
            if self.job.source.databases
            else str(details["databases"][0])
        )

    def load(self, reader: Reader, details: dict[str, Any]) -> str:
        db = self._target_db(details)
        if db:
            exists = _psql(
                self.conn,
                "postgres",
                # A string literal with its quotes doubled.
                f"SELECT 1 FROM pg_database WHERE datname = '{db.replace(chr(39), chr(39) * 2)}'",  # noqa: S608
                self._psql,
            )
            if not exists:
                _psql(
                    self.conn,
                    "postgres",
                    'CREATE DATABASE "' + db.replace('"', '""') + '"',
                    self._psql,
                )
            cmd: tuple[str, ...] = (self._psql, "-X", "-w", "-q", "-v", "ON_ERROR_STOP=1")
            fed = psqlfeed.feed(
                (*cmd, "--single-transaction"), reader, self._env, db, False, self.server
            )
            if fed.refused:
                raise psqlfeed.refusal()
            if fed.returncode != 0:
                raise ToolFailed("psql", fed.returncode, fed.tail)
            return f"loaded into database {db}"
        fed = psqlfeed.feed(
            (self._psql, "-X", "-w", "-q"), reader, self._env, "postgres", True, self.server
        )
        if fed.refused:
            raise psqlfeed.refusal()
        errors = [
            ln
            for ln in fed.errors
            if ("ERROR:" in ln or "error:" in ln) and not any(p.search(ln) for p in BENIGN)
        ]
        if fed.returncode != 0 or errors:
            raise ToolFailed("psql", fed.returncode or 3, "\n".join(errors[-5:]) or fed.tail)
        return "loaded all databases and roles"

"""PostgreSQL (and PostGIS) through pg_dumpall / pg_dump and psql.

The password reaches children only as PGPASSWORD in the child's own environment.
A pg_dump older than the server refuses to run: the matching client is picked among
Debian's /usr/lib/postgresql/N/bin, else the run fails at once naming both versions.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from typing import Any

from tiffin.engine import process
from tiffin.engine.streams import BLOCK, IterReader, Reader, buffered
from tiffin.errors import BackupFailed, ToolFailed
from tiffin.job import DBConn, RestoreJob, SourceSpec
from tiffin.sources import psqlfeed
from tiffin.sources.base import address
from tiffin.sources.beside import Beside, counted_rows
from tiffin.sources.pgclients import client_versions, newest_psql, pick_client, pick_major

# Errors that a pg_dumpall script meets on any live server and that do no harm.
BENIGN = (re.compile(r'role "[^"]+" already exists'),)
# Row counts recorded for drill: exact for tables up to this size, this much in all.
COUNT_TABLE_BYTES = 256 << 20
COUNT_BYTES = 2 << 30


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
        self._exact: dict[str, list[tuple[str, str]]] = {}
        self._counting: Beside[dict[str, dict[str, int]]] | None = None
        self._late: list[str] = []

    def prepare(self) -> dict[str, Any]:
        """Read the server's version, its databases and, per database in scope, its
        extensions, tables and row counts: one psql session for the server, one per database
        (psql cannot pick the next database from what the last query returned)."""
        conn = self.spec.conn
        head, *names = _psql(
            conn,
            "postgres",
            "SELECT current_setting('server_version_num'), "
            "current_setting('server_version'), rolsuper FROM pg_roles "
            "WHERE rolname = current_user;\n"
            "SELECT datname FROM pg_database "
            "WHERE datallowconn AND NOT datistemplate ORDER BY 1;",
            self._psql,
        )
        num, version, superuser = int(head[0]), head[1], head[2] == "t"
        major = num // 10000
        dbs = [r[0] for r in names]
        missing = [d for d in self.spec.databases if d not in dbs]
        if missing:
            raise BackupFailed(f"the server has no database named {', '.join(missing)}")
        scope = list(self.spec.databases) or dbs
        extensions: dict[str, dict[str, str]] = {}
        tables: dict[str, list[str]] = {}
        rows: dict[str, dict[str, int]] = {}
        estimated: dict[str, dict[str, int]] = {}
        budget = COUNT_BYTES
        self._exact.clear()
        for db in scope:
            ext, tables[db], self._exact[db], estimate, budget = self._inventory(db, budget)
            rows[db] = {}  # counted beside the dump: see finish()
            extensions[db] = {name: ver for name, ver in ext.items() if name != "plpgsql"}
            if estimate:
                estimated[db] = estimate
        dump = pick_client("pg_dump", major, client_versions("pg_dump"))
        dumpall = os.path.join(os.path.dirname(dump), "pg_dumpall")
        self._cmds = dump_commands(dumpall, dump, self.spec.databases, superuser)
        return {
            "server": "pgsql",
            "server_version": version,
            "databases": scope,
            "single_database": len(self.spec.databases) == 1,
            "roles": not self.spec.databases,
            "consistency": "snapshot per database",
            "extensions": {k: v for k, v in extensions.items() if v},
            "tables": tables,
            "rows": rows,
            **({"rows_estimated": estimated} if estimated else {}),
            "dump_tool": os.path.basename(self._cmds[0][0])
            + " "
            + str(pick_major(self._cmds[0][0])),
        }

    def _inventory(
        self, db: str, budget: int
    ) -> tuple[dict[str, str], list[str], list[tuple[str, str]], dict[str, int], int]:
        """Given a database and the bytes left to count, return, from one psql session, its
        {extension: version}, its tables, the (name, quoted name) of those to count exactly
        (smallest first, up to COUNT_TABLE_BYTES each), {table: the server's estimate} for
        the others, and the bytes left: what the manifest records and drill checks a restored
        copy with. Sorted by size, a table is counted when it and every smaller one fit."""
        sql = (
            "SELECT 'e', extname, extversion FROM pg_extension ORDER BY 2;\n"  # noqa: S608 - integers
            "SELECT 't', schemaname || '.' || tablename FROM pg_tables WHERE schemaname "
            "NOT IN ('pg_catalog', 'information_schema') ORDER BY 2;\n"
            "WITH rel AS (SELECT n.nspname || '.' || c.relname AS name, "
            "format('%I.%I', n.nspname, c.relname) AS quoted, pg_relation_size(c.oid) AS size, "
            "c.reltuples::bigint AS estimate FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN "
            "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'), "
            f"sized AS (SELECT *, size <= {COUNT_TABLE_BYTES} AND sum(size) OVER "
            f"(ORDER BY size, name) <= {budget} AS exact FROM rel) "
            "SELECT 'r', name, quoted, size, exact, estimate FROM sized ORDER BY size, name;\n"
        )
        extensions: dict[str, str] = {}
        tables: list[str] = []
        exact: list[tuple[str, str]] = []
        estimated: dict[str, int] = {}
        for row in _psql(self.spec.conn, db, sql, self._psql):
            tag, name, *rest = row
            if tag == "e":
                extensions[name] = rest[0]
            elif tag == "t":
                tables.append(name)
            elif tag == "r" and rest[2] == "t":
                exact.append((name, rest[0]))
                budget -= int(rest[1])
            elif tag == "r" and int(rest[3]) >= 0:
                estimated[name] = int(rest[3])
        return extensions, tables, exact, estimated, budget

    def _count(self, exact: dict[str, list[tuple[str, str]]]) -> dict[str, dict[str, int]]:
        """Given {db: [(table, quoted name)]}, return {db: {table: rows}} counted exactly, in
        one psql session per database."""
        counts: dict[str, dict[str, int]] = {}
        for db, tables in exact.items():
            counts[db] = {}
            for i in range(0, len(tables), 200):
                batch = tables[i : i + 200]
                sql = " UNION ALL ".join(
                    f"SELECT {n}, count(*) FROM {quoted}"  # noqa: S608
                    for n, (_, quoted) in enumerate(batch)
                )
                for n, count in _psql(self.spec.conn, db, sql, self._psql):
                    counts[db][batch[int(n)][0]] = int(count)
        return counts

    def open(self) -> Reader:
        env = pg_env(self.spec.conn, "postgres")
        server = server_of(self.spec.conn, self._psql)

        def chunks() -> Iterator[bytes]:
            for cmd in self._cmds:
                reader = process.spawn_reader(
                    cmd, name=os.path.basename(cmd[0]), env=env, server=server
                )
                self._children.append(process.child_of(reader))
                try:
                    while True:
                        data = reader.read(BLOCK)
                        if not data:
                            break
                        yield data
                finally:
                    reader.close()

        exact = self._exact
        self._counting = Beside(lambda: self._count(exact), "tiffin-pgsql-count")
        return buffered(IterReader(chunks()))

    def finish(self) -> dict[str, Any]:
        """Return the exact row counts taken beside the dump, or nothing (and a warning) if
        they could not be taken."""
        return counted_rows(self._counting, self._late)

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

"""The drill's own SQL: which databases and tables a scratch server holds after the load,
and their rows, read with the server's client over its socket (see tiffin.engine.scratch)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tiffin.engine import process
from tiffin.job import DBConn
from tiffin.sources.mysql import with_secret
from tiffin.sources.pgclients import newest_psql
from tiffin.sources.postgresql import _psql


def _ident(name: str, quote: str) -> str:
    return quote + name.replace(quote, quote * 2) + quote


def _literal(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "''") + "'"


def mysql_counts(conn: DBConn, db: str) -> dict[str, int] | None:
    """Given a scratch MariaDB server and a database of the dump, return {table: rows} of
    its base tables, or None if the server has no such database."""
    client = process.which("mariadb", "mysql") or "mysql"

    def sql(text: str) -> list[list[str]]:
        cmd, fds = with_secret(client, conn, ("-N", "-B"))
        out = process.run(cmd, name="mysql", input=text.encode(), pass_fds=fds)
        return [ln.split("\t") for ln in out.split("\n") if ln]

    if not sql(f"SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {_literal(db)}"):  # noqa: S608
        return None
    tables = [
        bytes.fromhex(r[0]).decode()
        for r in sql(
            "SELECT HEX(TABLE_NAME) FROM information_schema.TABLES WHERE "  # noqa: S608
            f"TABLE_SCHEMA = {_literal(db)} AND TABLE_TYPE = 'BASE TABLE'"
        )
    ]
    counts: dict[str, int] = {}
    for i in range(0, len(tables), 200):
        batch = tables[i : i + 200]
        text = " UNION ALL ".join(
            f"SELECT {n}, COUNT(*) FROM {_ident(db, '`')}.{_ident(t, '`')}"  # noqa: S608
            for n, t in enumerate(batch)
        )
        for n, c in sql(text):
            counts[batch[int(n)]] = int(c)
    return counts


def pg_counts(conn: DBConn, db: str) -> dict[str, int] | None:
    """Given a scratch PostgreSQL server and a database of the dump, return
    {schema.table: rows} of its tables, or None if the server has no such database."""
    psql = newest_psql()
    literal = "'" + db.replace("'", "''") + "'"
    if not _psql(conn, "postgres", f"SELECT 1 FROM pg_database WHERE datname = {literal}", psql):  # noqa: S608
        return None
    rows = _psql(
        conn,
        db,
        "SELECT n.nspname || '.' || c.relname, (xpath('/row/c/text()', query_to_xml("
        "format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, "
        "'')))[1]::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', "
        "'information_schema') AND n.nspname NOT LIKE 'pg\\_%'",
        psql,
    )
    return {r[0]: int(r[1]) for r in rows}


def dump_major(details: Mapping[str, Any]) -> int:
    """Given a pgsql backup's details, return the major version of the pg_dump that wrote it
    (else of the server dumped; 0 if neither is recorded)."""
    for key in ("dump_tool", "server_version"):
        m = re.search(r"(?<![\d.])(\d+)(?:\.\d+)*", str(details.get(key) or ""))
        if m:
            return int(m[1])
    return 0

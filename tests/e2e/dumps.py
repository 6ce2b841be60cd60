"""Helpers of the hostile-dump corpora: planting a dump as a complete backup with a true
manifest, fingerprinting a live server, and a folder the scratch server's user could write."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from tests.servers.mariadb import MariaDB
from tests.servers.postgres import Postgres
from tests.servers.proc import SHARED_TMP
from tiffin.catalog.manifest import Manifest
from tiffin.catalog.naming import make_name

WHEN = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)


def plant(folder: Path, kind: str, sql: str, single: bool) -> str:
    """Store SQL as a complete, uncompressed KIND (mysql/pgsql) backup in FOLDER whose manifest
    says it holds database shop with table t of 2 rows; return its name."""
    folder.mkdir(parents=True, exist_ok=True)
    label = "hostile-" + uuid.uuid4().hex[:8]
    name = make_name(label, kind, WHEN, "none", False)
    data = sql.encode()
    (folder / name).write_bytes(data)
    table = "t" if kind == "mysql" else "public.t"
    source = {
        "server": kind,
        "databases": ["shop"],
        "single_database": single,
        "tables": {"shop": [table]},
        "rows": {"shop": {table: 2}},
        "dump_tool": "mariadb-dump" if kind == "mysql" else "pg_dump 15",
    }
    if kind == "pgsql":
        source["roles"] = not single
    stamp = WHEN.strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = Manifest(
        name=name,
        what=kind,
        label=label,
        started=stamp,
        finished=stamp,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        compression="none",
        source=source,
    )
    (folder / (name + ".manifest.json")).write_bytes(manifest.to_json())
    return name


def mysql_dump(hostile: str, single: bool) -> str:
    """A small mysql dump of database shop (table t, 2 rows) with HOSTILE after its rows."""
    head = "" if single else "CREATE DATABASE shop;\nUSE shop;\n"
    return (
        "/*M!999999\\- enable the sandbox mode */\n"
        + head
        + "CREATE TABLE t (i INT);\nINSERT INTO t VALUES (1),(2);\n"
        + hostile
        + "\n"
    )


def pg_dump(hostile: str, single: bool) -> str:
    """A small pgsql dump of database shop (table public.t, 2 rows) with HOSTILE after."""
    head = "" if single else "CREATE DATABASE shop;\n\\connect shop\n"
    return (
        head
        + "CREATE TABLE public.t (i int);\nCOPY public.t (i) FROM stdin;\n1\n2\n\\.\n"
        + hostile
        + "\n"
    )


VOLATILE_MY = {"gtid_binlog_pos", "gtid_binlog_state", "gtid_current_pos", "timestamp"}


def my_fingerprint(server: MariaDB) -> dict[str, str]:
    """What a dump must not change on a live MariaDB server: its databases, tables and their
    rows, its accounts (with password hashes and privileges), grants, global variables."""
    tables = server.sql(
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA "
        "NOT IN ('information_schema', 'performance_schema') ORDER BY 1, 2"
    )
    rows = {
        line: server.sql(f"SELECT COUNT(*) FROM `{line.split(chr(9))[1]}`", line.split("\t")[0])
        for line in tables.splitlines()
        if line.startswith("victim")
    }
    variables = "\n".join(
        line
        for line in server.sql("SHOW GLOBAL VARIABLES").splitlines()
        if line.split("\t")[0] not in VOLATILE_MY
    )
    return {
        "databases": server.sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1"),
        "tables": tables,
        "rows": repr(rows),
        "accounts": server.sql("SELECT User, Host, Priv FROM mysql.global_priv ORDER BY 1, 2"),
        "grants": server.sql("SELECT * FROM mysql.db ORDER BY 1, 2, 3")
        + server.sql("SELECT * FROM mysql.tables_priv ORDER BY 1, 2, 3, 4")
        + server.sql("SELECT * FROM mysql.roles_mapping ORDER BY 1, 2, 3"),
        "variables": variables,
        "events": server.sql("SELECT EVENT_SCHEMA, EVENT_NAME FROM information_schema.EVENTS"),
    }


def pg_fingerprint(server: Postgres) -> dict[str, str]:
    """What a dump must not change on a live PostgreSQL server: its databases (owners, ACLs),
    the tables and rows of victim, roles with their attributes and password hashes, role
    memberships and settings, every setting, and postgresql.auto.conf."""
    return {
        "databases": server.sql(
            "SELECT datname, pg_get_userbyid(datdba), datacl, datallowconn, datconnlimit "
            "FROM pg_database ORDER BY 1"
        ),
        "tables": server.sql(
            "SELECT schemaname, tablename, tableowner FROM pg_tables WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema') ORDER BY 1, 2",
            "victim",
        ),
        "rows": server.sql("SELECT count(*) FROM victim.t", "victim"),
        "grants": server.sql("SELECT relname, relacl FROM pg_class WHERE relname = 't'", "victim"),
        "roles": server.sql("SELECT * FROM pg_authid ORDER BY rolname"),
        "members": server.sql("SELECT roleid, member FROM pg_auth_members ORDER BY 1, 2"),
        "role settings": server.sql("SELECT * FROM pg_db_role_setting ORDER BY 1, 2"),
        "settings": server.sql("SELECT name, setting FROM pg_settings ORDER BY 1"),
        "auto.conf": server.sql("SELECT pg_read_file('postgresql.auto.conf')"),
    }


@contextmanager
def open_folder() -> Iterator[Path]:
    """A folder anyone may write in (so that a scratch server running as nobody could, were
    it not jailed), removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="tiffin-planted-", dir=SHARED_TMP))
    os.chmod(path, 0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def my_victim(mariadb: MariaDB) -> None:
    mariadb.sql(
        "DROP DATABASE IF EXISTS victim; CREATE DATABASE victim;"
        "CREATE TABLE victim.t (i INT); INSERT INTO victim.t VALUES (1), (2), (3);"
        "CREATE USER IF NOT EXISTS victim_user@'%' IDENTIFIED BY 'victim-pw';"
        "GRANT SELECT ON victim.* TO victim_user@'%';"
    )


def pg_victim(postgres: Postgres) -> None:
    postgres.sql('DROP DATABASE IF EXISTS "victim" WITH (FORCE)')
    postgres.sql("CREATE DATABASE victim")
    postgres.sql(
        "CREATE SCHEMA victim; CREATE TABLE victim.t (i int);"
        "INSERT INTO victim.t VALUES (1), (2), (3);",
        "victim",
    )

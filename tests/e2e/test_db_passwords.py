"""Any database password works: hypothesis draws one, the real server gets a user with it,
and tiffin backs up and restores as that user (the password from TIFFIN_DB_PASSWORD, which
reaches mariadb-dump/mariadb through an option file and pg_dump/psql through PGPASSWORD)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.helpers import backups, tiffin
from tests.faults.tried import tried
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB
from tests.servers.postgres import Postgres

# What option files and shells take specially, then any Unicode (but NUL, which no
# environment variable can hold).
SPECIAL = ["#", ";", "'", '"', "\\", "\\n", "\\\\", " ", "\t", "\n", "=", "[x]", "$", "%", "é"]
PASSWORD = (
    st.lists(
        st.sampled_from(SPECIAL)
        | st.text(
            st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=4
        ),
        min_size=1,
        max_size=8,
    )
    .map("".join)
    .filter(bool)
)  # an empty password is no password (PostgreSQL: none set)
SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "12")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
KNOWN = ["pa#ss", "' sp '", '"q"', " lead", "trail ", "a\\", "\\", "x#y'z\"w"]


def _mysql_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def mysql_round_trip(mariadb: MariaDB, password: str, root: Path) -> None:
    user, db = f"pw_{uuid.uuid4().hex[:8]}", f"pwdb_{uuid.uuid4().hex[:8]}"
    mariadb.sql(
        f"SET NAMES utf8mb4; CREATE USER '{user}'@'%' IDENTIFIED BY {_mysql_literal(password)};"
        f" GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%'; CREATE DATABASE {db};"
        f" CREATE TABLE {db}.t (i INT PRIMARY KEY) ENGINE=InnoDB;"
        f" USE {db}; INSERT INTO t SELECT seq FROM seq_1_to_7;"
    )
    try:
        env = tiffin_env(root / "home", TIFFIN_DB_PASSWORD=password)
        conn = ["--host", mariadb.host, "--port", str(mariadb.port), "--user", user]
        out = root / "b"
        tiffin(["backup", "mysql", "local", str(out), *conn, "--database", db], env)
        [name] = backups(out)
        into = ["--into", "mysql", *conn, "--database", db + "_copy"]
        tiffin(["restore", "local", str(out), name, *into], env)
        assert mariadb.sql(f"SELECT COUNT(*), SUM(i) FROM {db}_copy.t") == "7\t28"
        bad = tiffin_env(root / "home", TIFFIN_DB_PASSWORD=password + "x")
        r = tiffin(
            ["backup", "mysql", "local", str(root / "bad"), *conn, "--database", db], bad, expect=1
        )
        assert "Access denied" in r.stderr
    finally:
        mariadb.sql(
            f"DROP USER '{user}'@'%'; DROP DATABASE {db}; DROP DATABASE IF EXISTS {db}_copy"
        )


def pgsql_round_trip(postgres: Postgres, password: str, root: Path) -> None:
    user, db = f"pw_{uuid.uuid4().hex[:8]}", f"pwdb_{uuid.uuid4().hex[:8]}"
    literal = "'" + password.replace("'", "''") + "'"
    postgres.sql(f"CREATE ROLE {user} LOGIN SUPERUSER PASSWORD {literal}")
    postgres.sql(f"CREATE DATABASE {db} OWNER {user}")
    postgres.sql("CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 7)", db)
    try:
        env = tiffin_env(root / "home", TIFFIN_DB_PASSWORD=password)
        conn = ["--host", postgres.host, "--port", str(postgres.port), "--user", user]
        out = root / "b"
        tiffin(["backup", "pgsql", "local", str(out), *conn, "--database", db], env)
        [name] = backups(out)
        into = ["--into", "pgsql", *conn, "--database", db + "_copy"]
        tiffin(["restore", "local", str(out), name, *into], env)
        assert postgres.sql("SELECT count(*), sum(i) FROM t", db + "_copy") == "7|28"
        bad = tiffin_env(root / "home", TIFFIN_DB_PASSWORD=password + "x")
        r = tiffin(
            ["backup", "pgsql", "local", str(root / "bad"), *conn, "--database", db], bad, expect=1
        )
        assert "password authentication failed" in r.stderr
    finally:
        for name_ in (db, db + "_copy"):
            postgres.sql(f"DROP DATABASE IF EXISTS {name_} WITH (FORCE)")
        postgres.sql(f"DROP ROLE {user}")


ROUND_TRIPS = {"mysql": ("mariadb", mysql_round_trip), "pgsql": ("postgres", pgsql_round_trip)}


@tried(
    "secret",
    "Any database password",
    "hypothesis (12 examples per server; FUZZ_EXAMPLES=N) draws passwords of # ; quotes "
    "backslashes \\n blanks at either end and any Unicode, plus pa#ss, ' sp ', \"q\"; the "
    "real server (MariaDB; PostgreSQL with scram-sha-256 over TCP) gets a user with it; "
    "`tiffin backup` and `restore --into` run as that user",
    "both exit 0 and the restored table has its 7 rows; the password plus one character is "
    "refused by the server (exit 1)",
)
@pytest.mark.parametrize("kind", list(ROUND_TRIPS))
@SETTINGS
@given(password=PASSWORD | st.sampled_from(KNOWN))
def test_any_password_backs_up_and_restores(
    kind: str,
    password: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    fixture, round_trip = ROUND_TRIPS[kind]
    round_trip(request.getfixturevalue(fixture), password, tmp_path_factory.mktemp(kind))

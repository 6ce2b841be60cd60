"""Fixtures of the fault matrix: a target of each kind (`place`, parametrized indirectly by
kind) and one big database per server, made once per session, that dumps to ~60 MB: long
enough to be caught mid-stream (S3 sends its first 8 MiB part before the fault)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.places import Place, make_place
from tests.servers.mariadb import MariaDB
from tests.servers.postgres import Postgres
from tests.servers.proc import CommandError

BIG_DB = "faults_big"
ROWS = 180_000  # x ~330 bytes of hex a row: ~60 MB of dump, ~33 MB gzipped


@dataclass(frozen=True)
class Source:
    """A database source as the command line names it."""

    what: str
    args: list[str]
    env: dict[str, str]
    server: MariaDB | Postgres

    def kill_sessions(self) -> None:
        """Have the server end the dump's session, as an administrator (or a crash) would."""
        if isinstance(self.server, MariaDB):
            ids = self.server.sql(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'tiffin'"
            ).split()
            assert ids, "no session of the dump to end"
            # Row counts run beside the dump in a session of their own, which may have ended
            # between the look-up and its KILL: the dump's own session must be ended.
            killed = 0
            for i in ids:
                try:
                    self.server.sql(f"KILL CONNECTION {i}")
                    killed += 1
                except CommandError as exc:
                    assert "Unknown thread id" in str(exc), exc
            assert killed, "no session of the dump to end"
        else:
            ended = self.server.sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE datname = '{BIG_DB}' AND application_name = 'pg_dump'"
            )
            assert ended == "1", ended


@pytest.fixture(scope="session")
def big_mysql(mariadb: MariaDB) -> MariaDB:
    mariadb.sql(f"CREATE DATABASE IF NOT EXISTS {BIG_DB}")
    if mariadb.sql(f"SHOW TABLES FROM {BIG_DB} LIKE 'big'") != "big":
        mariadb.sql(
            "CREATE TABLE big_new (id INT PRIMARY KEY, pad VARCHAR(400)) ENGINE=InnoDB;"
            "INSERT INTO big_new SELECT seq, CONCAT(SHA2(seq, 512), SHA2(seq + 7, 512), "
            f"SHA2(seq + 13, 256)) FROM seq_1_to_{ROWS};"
            "RENAME TABLE big_new TO big;",
            BIG_DB,
        )
    return mariadb


@pytest.fixture(scope="session")
def big_pgsql(postgres: Postgres) -> Postgres:
    if postgres.sql(f"SELECT count(*) FROM pg_database WHERE datname = '{BIG_DB}'") == "0":
        postgres.sql(f'CREATE DATABASE "{BIG_DB}"')
    if postgres.sql("SELECT to_regclass('public.big') IS NOT NULL", BIG_DB) != "t":
        postgres.sql(
            "CREATE TABLE big_new AS SELECT i AS id, "
            "encode(sha512(i::text::bytea), 'hex') || encode(sha512((i + 7)::text::bytea), "
            "'hex') || encode(sha256((i + 13)::text::bytea), 'hex') AS pad "
            f"FROM generate_series(1, {ROWS}) i;"
            "ALTER TABLE big_new RENAME TO big;",
            BIG_DB,
        )
    return postgres


@pytest.fixture
def source(request: pytest.FixtureRequest) -> Source:
    """The big database of the server named by the parameter: mysql or pgsql."""
    what: str = request.param
    server: MariaDB | Postgres = request.getfixturevalue(f"big_{what}")
    args = [*server.conn_args(), "--database", BIG_DB]
    return Source(what, args, server.client_env(), server)


@pytest.fixture
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    """A target of the kind named by the parameter, in a folder of its own."""
    return make_place(request.param, request, tmp_path / "home")

"""PostgreSQL end to end: populate, back up, drop, restore, compare rows."""

from __future__ import annotations

import json

import pytest

from tests.e2e.data import populate_pgsql
from tests.e2e.helpers import backups, leftovers, manifest, tiffin
from tests.servers.env import tiffin_env


@pytest.fixture
def env(postgres, tmp_path):
    return tiffin_env(tmp_path / "home", **postgres.client_env(), HOSTNAME="ramen-pg-0")


def drop_all_user_databases(postgres) -> None:
    for db in postgres.sql(
        "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'"
    ).split():
        postgres.sql(f'DROP DATABASE "{db}" WITH (FORCE)')


def test_pgsql_all_databases_and_roles_round_trip(postgres, env, tmp_path):
    populate_pgsql(postgres, "ramen")
    postgres.sql(
        "DROP ROLE IF EXISTS cook; CREATE ROLE cook LOGIN; GRANT SELECT ON menu TO cook;", "ramen"
    )
    out = tmp_path / "b"
    r = tiffin(["backup", "pgsql", "local", str(out), "nightly", *postgres.conn_args()], env)
    [name] = backups(out / "nightly")
    assert name.endswith(".sql.gz") and f"Backup {name} completed." in r.stdout
    m = manifest(out / "nightly", name)
    assert m["what"] == "pgsql" and m["source"]["roles"] is True
    assert "ramen" in m["source"]["databases"]
    assert m["source"]["extensions"]["ramen"]["pg_trgm"]
    drop_all_user_databases(postgres)
    postgres.sql("DROP ROLE cook")
    tiffin(
        [
            "restore",
            "local",
            str(out),
            "nightly",
            "latest",
            "--into",
            "pgsql",
            *postgres.conn_args(),
        ],
        env,
    )
    assert postgres.sql("SELECT count(*), sum(price) FROM menu", "ramen") == "40|410.00"
    assert postgres.sql("SELECT count(*) FROM cheap", "ramen") == "9"
    assert postgres.sql("SELECT rolname FROM pg_roles WHERE rolname = 'cook'") == "cook"
    assert postgres.sql("SELECT has_table_privilege('cook', 'menu', 'SELECT')", "ramen") == "t"


def test_restore_of_all_databases_refuses_to_clobber_existing_ones(postgres, env, tmp_path):
    populate_pgsql(postgres, "clobber_me", rows=3)
    out = tmp_path / "b"
    tiffin(["backup", "pgsql", "local", str(out), *postgres.conn_args()], env)
    r = tiffin(
        ["restore", "local", str(out), "latest", "--into", "pgsql", *postgres.conn_args()],
        env,
        expect=1,
    )
    assert "clobber_me" in r.stderr and "already has" in r.stderr


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_single_database_restores_under_a_new_name(postgres, env, tmp_path, compress):
    populate_pgsql(postgres, "src_" + compress, rows=12)
    out = tmp_path / "b"
    tiffin(
        [
            "backup",
            "postgres",
            f"file://{out}",
            *postgres.conn_args(),
            "--database",
            "src_" + compress,
            "--compress",
            compress,
        ],
        env,
    )
    [name] = backups(out)
    assert manifest(out, name)["source"]["single_database"] is True
    tiffin(
        [
            "restore",
            f"file://{out}",
            name,
            "--into",
            "pgsql",
            "--database",
            "copy_" + compress,
            *postgres.conn_args(),
        ],
        env,
    )
    assert postgres.sql("SELECT count(*) FROM menu", "copy_" + compress) == "12"


def test_restore_refuses_a_server_lacking_an_extension(postgres, env, tmp_path):
    populate_pgsql(postgres, "ext_db", rows=1)
    out = tmp_path / "b"
    tiffin(
        ["backup", "pgsql", "local", str(out), *postgres.conn_args(), "--database", "ext_db"], env
    )
    [name] = backups(out)
    path = out / (name + ".manifest.json")
    m = json.loads(path.read_text())
    m["source"]["extensions"]["ext_db"]["postgis"] = "3.3.2"
    path.write_text(json.dumps(m))
    r = tiffin(
        [
            "restore",
            "local",
            str(out),
            name,
            "--into",
            "pgsql",
            "--database",
            "ext_new",
            *postgres.conn_args(),
        ],
        env,
        expect=1,
    )
    assert "lacks the extension postgis" in r.stderr
    assert postgres.sql("SELECT count(*) FROM pg_database WHERE datname = 'ext_new'") == "0"


def test_pg_dump_failing_at_a_row_security_table_fails_and_leaves_nothing(postgres, tmp_path):
    db = "rls_db"
    postgres.sql(f'DROP DATABASE IF EXISTS "{db}"')
    postgres.sql(f'CREATE DATABASE "{db}"')
    postgres.sql("DROP ROLE IF EXISTS dumper; CREATE ROLE dumper LOGIN PASSWORD 'Dump-pw-1'")
    postgres.sql(
        "CREATE TABLE a_big AS SELECT i AS id, md5(i::text) AS pad "
        "FROM generate_series(1, 50000) i;"
        "CREATE TABLE z_secret (id int, owner text);"
        "INSERT INTO z_secret VALUES (1, 'x');"
        "ALTER TABLE z_secret ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY mine ON z_secret USING (owner = current_user);"
        "GRANT SELECT ON a_big, z_secret TO dumper;",
        db,
    )
    env = tiffin_env(tmp_path / "home", TIFFIN_DB_PASSWORD="Dump-pw-1")
    out = tmp_path / "b"
    out.mkdir()
    r = tiffin(
        [
            "backup",
            "pgsql",
            "local",
            str(out),
            "--host",
            "127.0.0.1",
            "--port",
            str(postgres.port),
            "--user",
            "dumper",
            "--database",
            db,
        ],
        env,
        expect=1,
    )
    assert "FAILED" in r.stderr and "row-level security" in r.stderr, r.stderr
    assert leftovers(out) == []


def test_a_user_who_is_no_superuser_backs_up_every_database_without_role_passwords(
    postgres, tmp_path
):
    # The dump starts beside the first psql session as a superuser's would; for this user
    # that session says otherwise, and the dump that runs is pg_dumpall --no-role-passwords.
    populate_pgsql(postgres, "nosu_db", rows=3)
    postgres.sql(
        "DROP ROLE IF EXISTS reader; CREATE ROLE reader LOGIN BYPASSRLS PASSWORD 'Read-pw-1' "
        "IN ROLE pg_read_all_data"
    )
    env = tiffin_env(tmp_path / "home", TIFFIN_DB_PASSWORD="Read-pw-1")
    out = tmp_path / "b"
    conn = ["--host", "127.0.0.1", "--port", str(postgres.port), "--user", "reader"]
    tiffin(["backup", "pgsql", "local", str(out), *conn, "--compress", "none"], env)
    [name] = backups(out)
    dump = (out / name).read_text()
    assert 'CREATE ROLE "reader";' in dump and "SCRAM-SHA-256$" not in dump
    assert 'COPY "public"."menu"' in dump
    m = manifest(out, name)
    assert m["source"]["roles"] is True and "nosu_db" in m["source"]["databases"]
    assert m["source"]["rows"]["nosu_db"]["public.menu"] == 3


def test_pgpass_file_is_used(postgres, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    pgpass = home / ".pgpass"
    pgpass.write_text(f"127.0.0.1:{postgres.port}:*:postgres:{postgres.password}\n")
    pgpass.chmod(0o600)
    populate_pgsql(postgres, "pgpass_db", rows=1)
    tiffin(
        [
            "backup",
            "pgsql",
            "local",
            str(tmp_path / "b"),
            *postgres.conn_args(),
            "--database",
            "pgpass_db",
        ],
        tiffin_env(home),
    )
    assert len(backups(tmp_path / "b")) == 1


def test_server_down_is_exit_1(tmp_path):
    env = tiffin_env(tmp_path / "home", TIFFIN_DB_PASSWORD="x")
    r = tiffin(
        [
            "backup",
            "pgsql",
            "local",
            str(tmp_path / "b"),
            "--host",
            "127.0.0.1",
            "--port",
            "1",
            "--user",
            "postgres",
        ],
        env,
        expect=1,
    )
    assert "FAILED" in r.stderr and "connect" in r.stderr.lower()

"""Hostile dumps through the installed command: a drill never changes the live server it is
pointed at, whatever SQL the dump holds, and no restore or drill runs a program or touches a
client-side file because the dump says so. Each dump is planted as a complete backup with a
true manifest (as anyone who can write to the target could), then drilled or restored."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.dumps import (
    my_fingerprint,
    my_victim,
    mysql_dump,
    open_folder,
    pg_dump,
    pg_fingerprint,
    pg_victim,
    plant,
)
from tests.e2e.helpers import tiffin, tiffin_exe
from tests.faults.tried import tried
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB
from tests.servers.postgres import Postgres

# SQL run on the live server: {m} a path in a folder anyone may write, {port}, {pw}, {sock}
# the live server's. Each is planted once in a single-database dump, once in an
# all-databases one.
MY_SQL = {
    "drop database": "DROP DATABASE victim;",
    "drop schema": "drop schema victim;",
    "use, delete": "USE victim; DELETE FROM t;",
    "use backquoted, delete": "USE `victim`;\nDELETE FROM `t`;",
    "mixed case": "DrOp DaTaBaSe victim;",
    "mid-line": "SELECT 1; DROP DATABASE victim;",
    "versioned comment": "/*!50000 drop database victim*/;",
    "inside comments": "/* x */ DROP /* y */ DATABASE victim -- z\n;",
    "qualified delete": "DELETE FROM victim.t; TRUNCATE victim.t;",
    "rename table": "RENAME TABLE victim.t TO victim.gone;",
    "create user, grant": "CREATE USER evil@'%' IDENTIFIED BY 'x'; GRANT ALL ON *.* TO evil@'%';",
    "grant": "GRANT ALL ON *.* TO victim_user@'%' WITH GRANT OPTION;",
    "alter user root": "ALTER USER root@localhost IDENTIFIED BY 'pwned';",
    "set password": "SET PASSWORD FOR tiffin@'%' = PASSWORD('pwned');",
    "drop user": "DROP USER victim_user@'%';",
    "mysql tables": "DELETE FROM mysql.global_priv WHERE User = 'victim_user'; FLUSH PRIVILEGES;",
    "set global": "SET GLOBAL max_connections = 7; SET GLOBAL read_only = 1;",
    "general log elsewhere": "SET GLOBAL general_log_file = '{m}'; SET GLOBAL general_log = 1;"
    " SELECT 1;",
    "into outfile": "SELECT 'x' INTO OUTFILE '{m}';",
    "into dumpfile": "SELECT 'x' INTO DUMPFILE '{m}';",
    "federated to the live server": "INSTALL SONAME 'ha_federatedx'; CREATE TABLE f (i INT) "
    "ENGINE=FEDERATED CONNECTION='mysql://tiffin:{pw}@127.0.0.1:{port}/victim/t'; "
    "DELETE FROM f;",
    "event": "SET GLOBAL event_scheduler = ON; CREATE EVENT e ON SCHEDULE EVERY 1 SECOND "
    "DO DELETE FROM victim.t; DO SLEEP(2);",
    "shutdown": "SHUTDOWN;",
}
PG_SQL = {
    "drop database": "drop database victim;",
    "drop schema": "DROP SCHEMA victim CASCADE;",
    "connect, delete": "\\connect victim\nDELETE FROM victim.t;",
    "connect string": "\\connect dbname=victim host=127.0.0.1 port={port}\nDELETE FROM victim.t;",
    "mixed case": "DrOp DaTaBaSe victim;",
    "mid-line": "SELECT 1; DROP DATABASE victim;",
    "inside comments": "/* x */ DROP /* y */ DATABASE victim -- z\n;",
    "rename database": "ALTER DATABASE victim RENAME TO gone;",
    "create role": "CREATE ROLE evil SUPERUSER LOGIN PASSWORD 'x';",
    "alter role postgres": "ALTER ROLE postgres PASSWORD 'pwned' NOLOGIN;",
    "role setting": "ALTER ROLE postgres SET search_path = evil;",
    "grant": "GRANT ALL ON DATABASE victim TO PUBLIC; GRANT evil TO postgres;",
    "alter system": "ALTER SYSTEM SET max_connections = 7; ALTER SYSTEM SET "
    "archive_command = 'touch {m}'; SELECT pg_reload_conf();",
    "copy to program": "COPY (SELECT 1) TO PROGRAM 'touch {m}';",
    "copy to file": "COPY (SELECT 'x') TO '{m}';",
    "lo_export": "SELECT lo_export(lo_from_bytea(0, 'x'), '{m}');",
    "C function calling system()": "CREATE FUNCTION sys(cstring) RETURNS int AS "
    "'/lib/x86_64-linux-gnu/libc.so.6', 'system' LANGUAGE C STRICT; SELECT sys('touch {m}');",
    "dblink over TCP": "CREATE EXTENSION dblink; SELECT dblink_exec('host=127.0.0.1 "
    "port={port} user=postgres password={pw} dbname=victim', 'DROP TABLE victim.t');",
    "dblink over the socket": "CREATE EXTENSION IF NOT EXISTS dblink; SELECT dblink_exec("
    "'host={sock} port={port} user=postgres dbname=victim', 'DROP TABLE victim.t');",
    "postgres_fdw": "CREATE EXTENSION postgres_fdw; CREATE SERVER live FOREIGN DATA WRAPPER "
    "postgres_fdw OPTIONS (host '{sock}', port '{port}', dbname 'victim'); CREATE USER "
    "MAPPING FOR CURRENT_USER SERVER live OPTIONS (user 'postgres'); CREATE FOREIGN TABLE "
    "ft (i int) SERVER live OPTIONS (schema_name 'victim', table_name 't'); DELETE FROM ft;",
    "dblink to /var/run/postgresql": "CREATE EXTENSION dblink; SELECT dblink_exec("
    "'host=/var/run/postgresql user=postgres dbname=postgres', 'CREATE DATABASE pwned');",
    "dblink through /proc/PID/root": "CREATE EXTENSION dblink; DO $$ DECLARE p text; BEGIN "
    "FOR p IN SELECT pg_ls_dir('/proc') LOOP CONTINUE WHEN p !~ '^[0-9]+$'; BEGIN PERFORM "
    "dblink_exec('host=/proc/' || p || '/root{sock} port={port} user=postgres dbname=victim'"
    ", 'DROP TABLE victim.t'); EXCEPTION WHEN OTHERS THEN NULL; END; END LOOP; END $$;",
    "terminate backends": "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE pid <> pg_backend_pid();",
}
FORMS = {"single database": True, "all databases": False}
COUNT = len(MY_SQL) + len(PG_SQL)


def drill_hostile(server, kind: str, sql: str, single: bool, tmp_path: Path, **fmt) -> None:
    """Plant SQL in a dump, drill it pointing at SERVER, and assert SERVER and the planted
    paths are untouched and the drill ended with a verdict (no traceback)."""
    fingerprint = my_fingerprint if kind == "mysql" else pg_fingerprint
    with open_folder() as planted:
        marker = planted / "marker"
        text = sql.format(m=marker, port=server.port, pw=server.password, **fmt)
        dump = (mysql_dump if kind == "mysql" else pg_dump)(text, single)
        name = plant(tmp_path / "b", kind, dump, single)
        env = tiffin_env(tmp_path / "home", **server.client_env())
        before = fingerprint(server)
        drill = ["drill", "local", str(tmp_path / "b"), name, "--into", kind]
        r = tiffin([*drill, *server.conn_args()], env, expect=None)
        assert r.returncode in (0, 1), (r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and "unexpected error" not in r.stderr, r.stderr
        assert (f"Drill of {name} passed" in r.stdout) or (f"Drill of {name} FAILED" in r.stderr)
        assert fingerprint(server) == before
        assert list(planted.iterdir()) == []


@tried(
    "hostile",
    "A MariaDB dump that attacks the server drill is pointed at",
    "a dump of one database (and one of all databases) holding SQL against a live database "
    "`victim`, its accounts and its settings (DROP/USE/DELETE in mixed case, mid-line, in "
    "comments; CREATE USER, GRANT, ALTER USER, SET PASSWORD, SET GLOBAL, INTO OUTFILE, "
    "general_log_file, a FEDERATED table to the live server, SHUTDOWN) is planted with a true "
    "manifest and drilled with `--into mysql` and the live server's connection options",
    f"hostile dumps tried: {2 * len(MY_SQL)}; server state changed: 0 (databases, tables, "
    "rows, accounts with password hashes, grants, global variables, events compared before "
    "and after); files created outside the scratch server: 0; exit 0 or 1 with a verdict",
)
@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("case", list(MY_SQL))
def test_a_hostile_mysql_dump_never_changes_the_live_server(
    case: str, form: str, mariadb: MariaDB, tmp_path: Path
) -> None:
    my_victim(mariadb)
    try:
        drill_hostile(mariadb, "mysql", MY_SQL[case], FORMS[form], tmp_path)
    finally:
        mariadb.sql("DROP DATABASE IF EXISTS victim; DROP USER IF EXISTS victim_user@'%'")


@tried(
    "hostile",
    "A PostgreSQL dump that attacks the server drill is pointed at",
    "a dump of one database (and one of all databases) holding SQL against a live database "
    "`victim`, its roles and its settings (DROP DATABASE/SCHEMA in mixed case, mid-line, in "
    "comments; \\connect; CREATE/ALTER ROLE, GRANT, ALTER SYSTEM, COPY TO PROGRAM, COPY TO a "
    "file, lo_export, a C function calling system(), dblink and postgres_fdw to the live "
    "server over TCP, its socket, /var/run/postgresql and /proc/PID/root) is planted with "
    "a true manifest and drilled with `--into pgsql` and the live server's connection options",
    f"hostile dumps tried: {2 * len(PG_SQL)}; server state changed: 0 (databases, tables, "
    "rows, roles with password hashes, memberships, settings, postgresql.auto.conf compared "
    "before and after); files created outside the scratch server: 0; exit 0 or 1",
)
@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("case", list(PG_SQL))
def test_a_hostile_pgsql_dump_never_changes_the_live_server(
    case: str, form: str, postgres: Postgres, tmp_path: Path
) -> None:
    pg_victim(postgres)
    try:
        drill_hostile(
            postgres, "pgsql", PG_SQL[case], FORMS[form], tmp_path, sock=postgres.socket_dir
        )
    finally:
        postgres.sql('DROP DATABASE IF EXISTS "victim" WITH (FORCE)')


def scratch_processes(folder: Path) -> list[int]:
    """PIDs of the processes whose command line names a scratch folder under FOLDER."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(folder) in (entry / "cmdline").read_text():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@tried(
    "fault",
    "drill interrupted while its scratch server loads a dump",
    "a dump that sleeps mid-load is drilled with TMPDIR set to a fresh folder; once the "
    "scratch server's folder appears there, tiffin gets SIGTERM or SIGINT",
    "exit 1 `interrupted`; the scratch server's process is gone and its folder removed",
)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("kind", ["mysql", "pgsql"])
def test_an_interrupted_drill_leaves_no_scratch_server(
    kind: str, sig: signal.Signals, mariadb: MariaDB, postgres: Postgres, tmp_path: Path
) -> None:
    sleep = "DO SLEEP(120);" if kind == "mysql" else "SELECT pg_sleep(120);"
    dump = (mysql_dump if kind == "mysql" else pg_dump)(sleep, True)
    name = plant(tmp_path / "b", kind, dump, True)
    with open_folder() as tmp:
        os.chmod(tmp, 0o755)
        env = tiffin_env(tmp_path / "home", TMPDIR=str(tmp))
        cmd = [tiffin_exe(), "drill", "local", str(tmp_path / "b"), name, "--into", kind]
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 60
        while not (list(tmp.iterdir()) and scratch_processes(tmp)):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        time.sleep(2)  # well into the load
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, (out, err)
        assert "interrupted" in err, err
        assert list(tmp.iterdir()) == []
        assert scratch_processes(tmp) == []

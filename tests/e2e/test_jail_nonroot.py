"""Hostile dumps drilled by a user who is not root: the scratch server then runs as that
user, who can reach the live servers' Unix sockets (the suite's PostgreSQL trusts anyone on
its socket). The scratch server must reach none of them: its own user namespace and mount
namespace hide every folder but the system's and its own, and Landlock refuses the way
around through /proc/PID/root. tiffin itself runs here as `nobody`, as a cron job of an
unprivileged user would."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.dumps import (
    my_fingerprint,
    my_victim,
    mysql_dump,
    pg_dump,
    pg_fingerprint,
    pg_victim,
    plant,
)
from tests.e2e.helpers import tiffin_exe
from tests.faults.tried import tried
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB
from tests.servers.postgres import Postgres
from tests.servers.proc import SHARED_TMP

USER = "nobody"

# {sock}: the live server's socket folder, {port}: its port (which names the socket file).
PG_SQL = {
    "dblink over the socket": "CREATE EXTENSION dblink; SELECT dblink_exec('host={sock} "
    "port={port} user=postgres dbname=victim', 'DROP TABLE victim.t');",
    "dblink to the socket file's folder by its path under /var/run": "CREATE EXTENSION "
    "dblink; SELECT dblink_exec('host=/var/run/postgresql user=postgres dbname=postgres', "
    "'CREATE DATABASE pwned');",
    "postgres_fdw over the socket": "CREATE EXTENSION postgres_fdw; CREATE SERVER live "
    "FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '{sock}', port '{port}', dbname "
    "'victim'); CREATE USER MAPPING FOR CURRENT_USER SERVER live OPTIONS (user 'postgres', "
    "password_required 'false'); CREATE FOREIGN TABLE ft (i int) SERVER live OPTIONS "
    "(schema_name 'victim', table_name 't'); DELETE FROM ft;",
    "dblink through /proc/PID/root of every process": "CREATE EXTENSION dblink; DO $$ "
    "DECLARE p text; BEGIN FOR p IN SELECT pg_ls_dir('/proc') LOOP CONTINUE WHEN p !~ "
    "'^[0-9]+$'; BEGIN PERFORM dblink_exec('host=/proc/' || p || '/root{sock} port={port} "
    "user=postgres dbname=victim', 'DROP TABLE victim.t'); EXCEPTION WHEN OTHERS THEN "
    "NULL; END; END LOOP; END $$;",
}
# MariaDB's scratch server has an empty plugin folder: FEDERATED, FEDERATEDX and CONNECT
# cannot be loaded, and no engine built in reaches out. Tried all the same.
MY_SQL = {
    "federatedx over the socket": "INSTALL SONAME 'ha_federatedx'; CREATE TABLE f (i INT) "
    "ENGINE=FEDERATED CONNECTION='mysql://root@localhost:{port}/victim/t'; DELETE FROM f;",
}


def run_as_user(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    entry = pwd.getpwnam(USER)
    return subprocess.run(
        [tiffin_exe(), *args],
        env=tiffin_env(home, **env),
        cwd=home,
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


@pytest.fixture
def home() -> Iterator[Path]:
    """A HOME that USER owns, with a folder of backups in it."""
    path = Path(tempfile.mkdtemp(prefix="tiffin-nonroot-", dir=SHARED_TMP))
    os.chmod(path, 0o755)
    entry = pwd.getpwnam(USER)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def planted(home: Path, kind: str, sql: str) -> tuple[Path, str]:
    folder = home / "b"
    dump = (mysql_dump if kind == "mysql" else pg_dump)(sql, True)
    name = plant(folder, kind, dump, True)
    entry = pwd.getpwnam(USER)
    for p in [folder, *folder.iterdir()]:
        os.chown(p, entry.pw_uid, entry.pw_gid)
    return folder, name


def psql_as_user(postgres: Postgres, sql: str) -> subprocess.CompletedProcess[str]:
    entry = pwd.getpwnam(USER)
    cmd = [postgres.bin("psql"), "-X", "-w", "-h", str(postgres.socket_dir), "-p"]
    cmd += [str(postgres.port), "-U", "postgres", "-d", "victim", "-Atc", sql]
    return subprocess.run(
        cmd,
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=[],
        env={"PATH": "/usr/bin:/bin", "HOME": "/"},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )


def check_verdict(r: subprocess.CompletedProcess[str], name: str) -> None:
    assert r.returncode in (0, 1), (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "unexpected error" not in r.stderr, r.stderr
    assert f"Drill of {name} passed" in r.stdout or f"Drill of {name} FAILED" in r.stderr
    assert "no mount namespace" not in r.stdout + r.stderr


@tried(
    "hostile",
    "A PostgreSQL dump drilled by a user who is not root attacks the live servers' sockets",
    "`tiffin drill --into pgsql` runs as the OS user nobody, who can reach the suite's live "
    "PostgreSQL over its Unix socket with trust (checked first: the hole is real); the dump "
    "uses dblink and postgres_fdw to that socket, to /var/run/postgresql, and through "
    "/proc/PID/root of every process, to drop a live table",
    f"hostile dumps tried: {len(PG_SQL)}; server state changed: 0 (the fingerprint of "
    "tests/e2e/test_hostile_dumps.py before and after); every drill ends with a verdict",
)
@pytest.mark.parametrize("case", list(PG_SQL))
def test_a_nonroot_drill_cannot_reach_a_live_postgres_socket(
    case: str, postgres: Postgres, home: Path
) -> None:
    pg_victim(postgres)
    try:
        # The hole this closes: USER reaches the live server as its superuser, by trust.
        assert psql_as_user(postgres, "SELECT count(*) FROM victim.t").stdout.strip() == "3"
        folder, name = planted(
            home, "pgsql", PG_SQL[case].format(sock=postgres.socket_dir, port=postgres.port)
        )
        before = pg_fingerprint(postgres)
        r = run_as_user(["drill", "local", str(folder), name, "--into", "pgsql"], home)
        check_verdict(r, name)
        assert pg_fingerprint(postgres) == before
        assert "pwned" not in postgres.sql("SELECT datname FROM pg_database")
    finally:
        postgres.sql('DROP DATABASE IF EXISTS "victim" WITH (FORCE)')


@tried(
    "hostile",
    "A MariaDB dump drilled by a user who is not root attacks the live server",
    "`tiffin drill --into mysql` runs as the OS user nobody; the dump loads FEDERATEDX and "
    "points a table at the live MariaDB (the scratch server's plugin folder is empty, and "
    "SHOW ENGINES there lists no engine that reaches out)",
    f"hostile dumps tried: {len(MY_SQL)}; server state changed: 0",
)
@pytest.mark.parametrize("case", list(MY_SQL))
def test_a_nonroot_drill_cannot_reach_a_live_mariadb(
    case: str, mariadb: MariaDB, home: Path
) -> None:
    my_victim(mariadb)
    try:
        folder, name = planted(home, "mysql", MY_SQL[case].format(port=mariadb.port))
        before = my_fingerprint(mariadb)
        r = run_as_user(["drill", "local", str(folder), name, "--into", "mysql"], home)
        check_verdict(r, name)
        assert my_fingerprint(mariadb) == before
    finally:
        mariadb.sql("DROP DATABASE IF EXISTS victim; DROP USER IF EXISTS victim_user@'%'")


@tried(
    "fault",
    "No user namespace can be made for a non-root drill's scratch server",
    "`tiffin drill --into pgsql` runs as nobody inside a chroot (an unshared mount namespace "
    "with / bound under /tmp), where the kernel refuses to make a user namespace",
    "exit 0 with the verdict and one WARNING line saying the scratch server could reach the "
    "Unix sockets the user can (the policy of a kernel without Landlock)",
)
def test_where_no_namespace_can_be_made_the_drill_says_so_and_its_verdict_stands(
    postgres: Postgres, home: Path
) -> None:
    """A chrooted process may make no user namespace (the kernel refuses it): run there as
    USER, the drill goes on without hiding, as it does without Landlock, and warns."""
    folder, name = planted(home, "pgsql", "SELECT 1;")
    root = Path(tempfile.mkdtemp(prefix="tiffin-chroot-", dir=SHARED_TMP))
    entry = pwd.getpwnam(USER)
    drill = ["drill", "local", str(folder), name, "--into", "pgsql"]
    script = (
        f"mount --rbind / {root} && exec chroot --userspec={entry.pw_uid}:{entry.pw_gid} "
        f"{root} {tiffin_exe()} {' '.join(drill)}"
    )
    try:
        r = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            env=tiffin_env(home),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
        )
    finally:
        root.rmdir()  # the bind mount went with its namespace
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert f"Drill of {name} passed" in r.stdout
    assert (
        "WARNING: no mount namespace could be made here: the scratch PostgreSQL server could "
        "reach the Unix sockets of other servers on this machine that you can reach"
    ) in r.stdout

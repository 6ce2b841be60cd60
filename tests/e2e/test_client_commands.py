"""Client-side commands in a dump, through the installed command: psql's backslash commands
and the mariadb client's own commands would run a program or read or write a file on the
machine running tiffin. No restore (`--into pgsql|mysql`) and no drill may run one."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.e2e.dumps import mysql_dump, open_folder, pg_dump, plant
from tests.e2e.helpers import tiffin
from tests.faults.tried import tried
from tests.servers.env import tiffin_env
from tests.servers.mariadb import MariaDB
from tests.servers.postgres import Postgres

# {m}: the marker file a command would create; {inc}: a file that would run SQL making {m}
# if it were read (\i, source...).
PG_COMMANDS = {
    "\\!": "\\! touch {m}",
    "\\! mid-line": "SELECT 1; \\! touch {m}",
    "\\! after blanks": "   \\! touch {m}",
    "\\copy to program": "\\copy (select 1) to program 'touch {m}'",
    "\\copy from program": "\\copy public.t from program 'touch {m}'",
    "\\copy to a file": "\\copy (select 1) to '{m}'",
    "\\o |": "\\o |touch {m}\nSELECT 1;",
    "\\o file": "\\o {m}\nSELECT 1;",
    "\\g |": "SELECT 1 \\g |touch {m}",
    "\\g file": "SELECT 1 \\g {m}",
    "\\w": "SELECT 1\n\\w {m}",
    "\\s": "\\s {m}",
    "\\i": "\\i {inc}",
    "\\ir": "\\ir {inc}",
    "\\setenv": "\\setenv PAGER 'touch {m}'\n\\pset pager always\nSELECT 1;",
    "the dump's own \\restrict key": "\\restrict K\n\\unrestrict K\n\\! touch {m}",
    "a guessed \\unrestrict key": "\\unrestrict guess\n\\! touch {m}",
    "after COPY data": "COPY public.t (i) FROM stdin;\n3\n\\.\n\\! touch {m}",
    "a COPY that fails": "COPY nothing FROM stdin;\n\\! touch {m}\n\\.\n\\! touch {m}",
    "on a line over 1 MiB": "SELECT 1;" + " " * ((1 << 20) + 10) + "\\! touch {m}",
    "\\connect with a host": "\\connect dbname=postgres host=127.0.0.1\n\\! touch {m}",
}
PG_INCLUDED = "COPY (SELECT 1) TO PROGRAM 'touch {m}';\n"
MY_COMMANDS = {
    "\\!": "\\! touch {m}",
    "system": "system touch {m}",
    "SYSTEM mid-line": "SELECT 1; SYSTEM touch {m}",
    "tee": "tee {m}\nSELECT 1;",
    "\\T": "\\T {m}\nSELECT 1;",
    "pager": "pager touch {m}\nSELECT 1;",
    "\\P": "\\P touch {m}\nSELECT 1;",
    "source": "source {inc}",
    "\\.": "\\. {inc}",
    "connect elsewhere": "connect mysql 127.0.0.1\nSELECT 1;",
    "\\r elsewhere": "\\r mysql 127.0.0.1\nSELECT 1;",
    "LOAD DATA LOCAL": "LOAD DATA LOCAL INFILE '{inc}' INTO TABLE t;",
}
MY_INCLUDED = "SELECT 'x' INTO OUTFILE '{m}';\n"
# Where a dump goes: restored into the live server (both dump forms), or drilled.
MODES = {"restore one database": True, "restore all databases": False, "drill": True}
PG_REFUSED = "psql refused it, and nothing of it ran"
MY_REFUSED = "the client refused it, and nothing of it ran"


def run_dump(
    server, kind: str, text: str, included: str, mode: str, tmp_path: Path
) -> tuple[int, str]:
    """Plant TEXT in a dump, restore or drill it per MODE; return (exit status, stderr), after
    asserting that no marker was made and nothing was a traceback."""
    single = MODES[mode]
    with open_folder() as planted:
        marker = planted / "marker"
        inc = tmp_path / "included.sql"
        inc.write_text(included.format(m=marker))
        body = text.format(m=marker, inc=inc)
        dump = (mysql_dump if kind == "mysql" else pg_dump)(body, single)
        name = plant(tmp_path / "b", kind, dump, single)
        env = tiffin_env(tmp_path / "home", **server.client_env())
        where = ["local", str(tmp_path / "b"), name, "--into", kind, *server.conn_args()]
        if mode == "drill":
            r = tiffin(["drill", *where], env, expect=None)
        else:
            db = ["--database", "restored_" + uuid.uuid4().hex[:8]] if single else []
            r = tiffin(["restore", *where, *db], env, expect=None)
        assert "Traceback" not in r.stderr and "unexpected error" not in r.stderr, r.stderr
        assert list(planted.iterdir()) == [], (r.stdout, r.stderr)
        assert r.returncode in (0, 1), (r.stdout, r.stderr)
        return r.returncode, r.stderr


@tried(
    "hostile",
    "A PostgreSQL dump holding psql's client-side commands",
    "a dump holding `\\!`, `\\copy ... program`, `\\copy` to a file, `\\o |`, `\\o FILE`, "
    "`\\g |`, `\\g FILE`, `\\w`, `\\s`, `\\i`, `\\ir`, `\\setenv`, its own `\\restrict`/"
    "`\\unrestrict` key, a guessed key, after COPY data, after a COPY that fails, on a line "
    "over 1 MiB, `\\connect` with a host, each making a marker file, is planted with a true "
    "manifest, then restored `--into pgsql` (one database, all databases) and drilled",
    f"client commands tried: {len(PG_COMMANDS) * len(MODES)}; programs run or files "
    "touched: 0; exit 1 with `psql refused it, and nothing of it ran` (or psql's own error "
    "where the load stopped before the command)",
)
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("case", list(PG_COMMANDS))
def test_no_psql_command_of_a_dump_ever_runs(
    case: str, mode: str, postgres: Postgres, tmp_path: Path
) -> None:
    try:
        rc, stderr = run_dump(postgres, "pgsql", PG_COMMANDS[case], PG_INCLUDED, mode, tmp_path)
    finally:
        postgres.sql('DROP DATABASE IF EXISTS "shop" WITH (FORCE)')
    assert rc == 1
    if case != "a COPY that fails":
        assert PG_REFUSED in stderr, stderr


@tried(
    "hostile",
    "A MariaDB dump holding the mariadb client's own commands",
    "a dump holding `\\!`, `system`, `SYSTEM` mid-line, `tee`, `\\T`, `pager`, `\\P`, "
    "`source`, `\\.`, `connect`/`\\r` to another host and LOAD DATA LOCAL, each making a "
    "marker file or reading one, is planted with a true manifest, then restored `--into "
    "mysql` (one database, all databases) and drilled",
    f"client commands tried: {len(MY_COMMANDS) * len(MODES)}; programs run or files "
    "touched: 0; exit 1, with `the client refused it, and nothing of it ran` for the "
    "backslash commands (named ones reach the server as SQL and fail there)",
)
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("case", list(MY_COMMANDS))
def test_no_mariadb_client_command_of_a_dump_ever_runs(
    case: str, mode: str, mariadb: MariaDB, tmp_path: Path
) -> None:
    try:
        rc, stderr = run_dump(mariadb, "mysql", MY_COMMANDS[case], MY_INCLUDED, mode, tmp_path)
    finally:
        mariadb.sql("DROP DATABASE IF EXISTS shop")
    assert rc == 1
    if case.startswith("\\"):
        assert MY_REFUSED in stderr, stderr

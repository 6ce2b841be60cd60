"""MySQL / MariaDB through their own dump tool and client.

The password reaches every child through an inherited pipe named as the first option,
--defaults-extra-file=/dev/fd/N: never through argv or the environment."""

from __future__ import annotations

import math
from typing import Any

from tiffin.engine import process
from tiffin.engine.streams import Reader
from tiffin.errors import BackupFailed, ToolFailed, UsageError
from tiffin.job import DBConn, RestoreJob, SourceSpec
from tiffin.sources.base import address
from tiffin.sources.beside import Beside, counted_rows
from tiffin.sources.mysqlcoords import CoordinateScanner, binlog_status, coordinates, dump_option

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
TRANSACTIONAL = ("InnoDB",)
CONSISTENCY = ("auto", "single-transaction", "lock")
COUNT_TABLE_BYTES = 256 << 20  # row counts for drill: exact for tables up to this size,
COUNT_BYTES = 2 << 30  # and this much in all


def _quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _quote_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def conn_options(conn: DBConn) -> tuple[str, ...]:
    """Given a connection, return the client options for it (no password: see with_secret)."""
    opts: list[str] = []
    if conn.host:
        opts += ["--host", conn.host]
        if conn.host not in ("localhost",):
            opts.append("--protocol=TCP")
    if conn.port:
        opts += ["--port", str(conn.port)]
    if conn.socket:
        opts += ["--socket", conn.socket]
        if conn.host in (None, "localhost"):
            opts.append("--protocol=SOCKET")
    if conn.user:
        opts += ["--user", conn.user]
    return tuple(opts)


# How the clients' option-file reader (mysys my_default.c) reads a value: it ends at a line
# break, a '#' outside quotes starts a comment, blanks at either end and one pair of quotes
# around it are dropped, then \n \t \r \b \s \" \' \\ are unescaped. So the value goes in
# double quotes with these escaped; a line longer than its 4 KiB buffer would be cut.
_OPTION_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b"}
OPTION_LINE_MAX = 4000


def option_value(value: str) -> str:
    """Given a value, return it as an option file writes it so that the clients read it back
    exactly. Raise UsageError if no option file can hold it (a NUL; too long)."""
    text = '"' + "".join(_OPTION_ESCAPES.get(c, c) for c in value) + '"'
    if "\0" in value or len(text.encode("utf-8", "surrogateescape")) > OPTION_LINE_MAX:
        raise UsageError("the database password holds a NUL or is over 4000 bytes long")
    return text


def connect_timeout(binary: str) -> tuple[str, ...]:
    """Given a client binary, return its option that gives up on a server that accepts the
    connection and never greets (hung, frozen): the client has one, the dump and binlog
    tools do not (their watchdog ends them, see process.Server)."""
    if binary.rsplit("/", 1)[-1].endswith(("dump", "binlog")):
        return ()
    return (f"--connect-timeout={max(1, math.ceil(process.patience()))}",)


def server_of(client_bin: str, conn: DBConn) -> process.Server:
    """Given the client and a connection, return the server every child waits on, with a
    ping (a fresh session's SELECT 1) that tells a busy server from a hung one."""

    def ping() -> None:
        cmd, fds = with_secret(client_bin, conn, ("-N", "-B", "-e", "SELECT 1"))
        process.run(cmd, name="mysql", pass_fds=fds)

    where = address(conn.host, conn.port, conn.socket)
    return process.Server(f"the MySQL server at {where}", ping)


def with_secret(
    binary: str, conn: DBConn, args: tuple[str, ...]
) -> tuple[tuple[str, ...], list[int]]:
    """Given a client binary, a connection and its other arguments, return the command and
    the descriptors to pass: the password, if any, in a pipe read as the first option."""
    opts = (*conn_options(conn), *connect_timeout(binary))
    if conn.password is None:
        return (binary, *opts, *args), []
    body = "[client]\npassword=" + option_value(conn.password) + "\n"
    fd = process.secret_pipe(body.encode("utf-8", "surrogateescape"))
    return (binary, f"--defaults-extra-file=/dev/fd/{fd}", *opts, *args), [fd]


def dump_command(
    binary: str,
    databases: tuple[str, ...],
    consistency: str,
    replica: bool,
    dump_replica_opt: str,
    coords_opt: str = "",
) -> tuple[str, ...]:
    """Given the dump tool, the databases (none: all), the consistency mode to use
    ('single-transaction' or 'lock'), whether to record the source's coordinates and the
    option that records this server's binary log coordinates ("": binary logging is off),
    return the dump tool's arguments (after the connection options)."""
    args = [
        "--routines",
        "--triggers",
        "--events",
        "--hex-blob",
        "--quick",
        "--default-character-set=utf8mb4",
    ]
    args.append(
        "--single-transaction" if consistency == "single-transaction" else "--lock-all-tables"
    )
    if coords_opt:
        args.append(coords_opt)
    if replica:
        args.append(dump_replica_opt)
    if not databases:
        args.append("--all-databases")
    elif len(databases) == 1:
        # One database without CREATE DATABASE/USE, so that it can be restored under any name.
        args += ["--", databases[0]]
    else:
        args += ["--databases", "--", *databases]
    return tuple(args)


def choose_consistency(requested: str, engines: dict[str, int]) -> str:
    """Given --consistency and the count of tables per engine in scope, return the mode to use:
    'single-transaction' only when every table is transactional, else 'lock' (the seed's
    safe default: MyISAM/Aria tables are consistent only with writes blocked)."""
    if requested != "auto":
        return requested
    if all(e in TRANSACTIONAL for e in engines):
        return "single-transaction"
    return "lock"


class MySQLSource:
    what = "mysql"

    def __init__(self, spec: SourceSpec) -> None:
        if spec.consistency not in CONSISTENCY:
            raise UsageError(f"--consistency must be one of {', '.join(CONSISTENCY)}")
        self.spec = spec
        self.dump_bin = process.which("mariadb-dump", "mysqldump") or "mysqldump"
        self.client_bin = process.which("mariadb", "mysql") or "mysql"
        self._child: process.Child | None = None
        self._consistency = "lock"
        self._exact: list[tuple[str, str]] = []
        self._counting: Beside[dict[str, dict[str, int]]] | None = None
        self._late: list[str] = []
        self._binlog: dict[str, Any] | None = None  # binary logging on: its server's details
        self._scanner: CoordinateScanner | None = None
        self.server = server_of(self.client_bin, spec.conn)

    def _query(self, sql: str) -> list[list[str]]:
        cmd, fds = with_secret(self.client_bin, self.spec.conn, ("-N", "-B", "-e", sql))
        name = self.client_bin.rsplit("/", 1)[-1]
        out = process.run(cmd, name=name, pass_fds=fds, server=self.server)
        return [line.split("\t") for line in out.split("\n") if line]

    def prepare(self) -> dict[str, Any]:
        """Read the version, databases and tables in scope (engine, size, estimate) at once."""
        wanted = self.spec.databases
        # Names are quoted as SQL string literals by _quote_str.
        among = ",".join(_quote_str(d) for d in (wanted or SYSTEM_SCHEMAS))
        rows = self._query(  # one session: each before the dump delays its start 10-20 ms
            "SELECT 'v', VERSION(); SELECT 'b', @@log_bin, @@server_id, IFNULL(@@log_bin_basename, "  # noqa: S608
            "''); SELECT 's', SCHEMA_NAME FROM information_schema.SCHEMATA; "
            "SELECT 't', TABLE_SCHEMA, TABLE_NAME, IFNULL(ENGINE,''), IFNULL(DATA_LENGTH, 0), "
            "IFNULL(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_TYPE='BASE TABLE' "
            f"AND TABLE_SCHEMA {'IN' if wanted else 'NOT IN'} ({among})"
        )
        version = next(r[1] for r in rows if r[0] == "v")
        dbs = [r[1] for r in rows if r[0] == "s"]
        missing = [d for d in wanted if d not in dbs]
        if missing:
            raise BackupFailed(f"the server has no database named {', '.join(missing)}")
        scope = list(wanted) or [d for d in dbs if d not in SYSTEM_SCHEMAS]
        sizes = [r[1:] for r in rows if r[0] == "t"]
        engines: dict[str, int] = {}
        tables: dict[str, list[str]] = {}
        for schema, table, engine, *_ in sizes:
            engines[engine] = engines.get(engine, 0) + 1
            tables.setdefault(schema, []).append(table)
        self._consistency = choose_consistency(self.spec.consistency, engines)
        details: dict[str, Any] = {
            "server": "mysql",
            "server_version": version,
            "databases": scope if wanted else [d for d in dbs if d not in SYSTEM_SCHEMAS[1:]],
            "single_database": len(wanted) == 1,
            "consistency": self._consistency,
            "engines": engines,
            "tables": {k: sorted(v) for k, v in sorted(tables.items())},
            "dump_tool": self.dump_bin.rsplit("/", 1)[-1],
        }
        self._exact, estimated = self._count_plan(sizes)
        exact = self.spec.counts == "exact"  # counted beside the dump: see finish()
        details["rows" if exact else "counts"] = {} if exact else self.spec.counts
        if estimated:
            details["rows_estimated"] = estimated
        if self.spec.replica:
            details["replica"] = self._replica_status()
        self._binlog = self._binlog_status(next(r[1:] for r in rows if r[0] == "b"))
        return details

    def _binlog_status(self, row: list[str]) -> dict[str, Any] | None:
        return binlog_status(self._query, self._late, row)

    def _replica_status(self) -> dict[str, str]:
        """Return where this replica replicates from. Raise BackupFailed if it is no replica.
        The exact coordinates at the dump's snapshot are written into the dump itself."""
        out = self._query_vertical("SHOW SLAVE STATUS")
        if not out.get("Master_Host"):
            raise BackupFailed(
                "--replica: the server is not a replica (SHOW SLAVE STATUS is empty)"
            )
        return {
            "source": f"{out['Master_Host']}:{out.get('Master_Port', '')}",
            "source_log_file_at_start": out.get("Relay_Master_Log_File", ""),
            "source_log_pos_at_start": out.get("Exec_Master_Log_Pos", ""),
        }

    def _query_vertical(self, sql: str) -> dict[str, str]:
        cmd, fds = with_secret(self.client_bin, self.spec.conn, ("-E", "-e", sql))
        name = self.client_bin.rsplit("/", 1)[-1]
        out = process.run(cmd, name=name, pass_fds=fds, server=self.server)
        fields = (line.partition(":") for line in out.split("\n") if ":" in line)
        return {k.strip(): v.strip() for k, _, v in fields}

    def _count_plan(
        self, sizes: list[list[str]]
    ) -> tuple[list[tuple[str, str]], dict[str, dict[str, int]]]:
        """Given (schema, table, engine, bytes, estimate) of the tables in scope, return those to
        count exactly (the smallest, up to COUNT_TABLE_BYTES each and COUNT_BYTES in all; none
        with --counts estimate) and {db: {table: the server's estimate}} of the others."""
        exact: list[tuple[str, str]] = []
        estimated: dict[str, dict[str, int]] = {}
        budget = COUNT_BYTES if self.spec.counts == "exact" else -1
        listed = sizes if self.spec.counts != "off" else []
        for schema, table, _, size, estimate in sorted(listed, key=lambda r: int(r[3])):
            if int(size) <= min(COUNT_TABLE_BYTES, budget):
                exact.append((schema, table))
                budget -= int(size)
            else:
                estimated.setdefault(schema, {})[table] = int(estimate)
        return exact, estimated

    def _count(self, exact: list[tuple[str, str]]) -> dict[str, dict[str, int]]:
        """Return {db: {table: rows}} of the tables given, counted exactly."""
        counts: dict[str, dict[str, int]] = {}
        for i in range(0, len(exact), 200):
            batch = exact[i : i + 200]
            sql = " UNION ALL ".join(
                f"SELECT {n}, COUNT(*) FROM {_quote_ident(d)}.{_quote_ident(t)}"  # noqa: S608
                for n, (d, t) in enumerate(batch)
            )
            for n, count in self._query(sql):
                d, t = batch[int(n)]
                counts.setdefault(d, {})[t] = int(count)
        return counts

    def _replica_opt(self) -> str:
        if "mariadb" in self.dump_bin:
            return "--dump-slave=2"
        helptext = process.run((self.dump_bin, "--help"), name="mysqldump")
        return "--dump-replica=2" if "--dump-replica" in helptext else "--dump-slave=2"

    def open(self) -> Reader:
        replica_opt = self._replica_opt() if self.spec.replica else ""
        coords_opt = ""
        if self._binlog is not None:
            helptext = process.run((self.dump_bin, "--help"), name="mysqldump")
            coords_opt = dump_option(self.dump_bin, helptext)
        args = dump_command(
            self.dump_bin,
            self.spec.databases,
            self._consistency,
            self.spec.replica,
            replica_opt,
            coords_opt,
        )
        cmd, fds = with_secret(self.dump_bin, self.spec.conn, args)
        name = self.dump_bin.rsplit("/", 1)[-1]
        reader = process.spawn_reader(cmd, name=name, pass_fds=fds, server=self.server)
        self._child = process.child_of(reader)
        exact = self._exact
        if self.spec.counts == "exact":
            self._counting = Beside(lambda: self._count(exact), "tiffin-mysql-count")
        if coords_opt:
            self._scanner = CoordinateScanner(reader)
            return self._scanner
        return reader

    def finish(self) -> dict[str, Any]:
        """Return the exact row counts taken beside the dump, or nothing (and a warning) if
        they could not be taken, and the binary log coordinates the dump recorded."""
        rows = counted_rows(self._counting, self._late)
        return {**rows, **coordinates(self._scanner, self._binlog, self._query, self._late)}

    def warnings(self) -> list[str]:
        if self._child is None:
            return list(self._late)
        tool = [ln for ln in self._child.stderr_tail.splitlines() if "warning" in ln.lower()]
        return tool + self._late


_sandboxed: dict[str, bool] = {}
# How the client says it refused one of its own commands (in --binary-mode, --sandbox).
REFUSED = ("Not allowed in the sandbox mode", "Unknown command '\\")


def guarded(client: str) -> tuple[str, ...]:
    """Return the options that keep CLIENT from running a program or touching a file because
    a dump says so: --binary-mode (no named command: system, source, tee, pager...),
    --sandbox (no \\!, \\., \\T...) and no LOAD DATA LOCAL. Raise BackupFailed (one
    sentence) if CLIENT has no --sandbox."""
    if client not in _sandboxed:
        _sandboxed[client] = "--sandbox" in process.run((client, "--help"), name="mysql")
    if not _sandboxed[client]:
        raise BackupFailed(
            f"{client} cannot be kept from running the programs and files a dump may name "
            "(it has no --sandbox, which the MariaDB client has since 10.5.25, 10.6.18 and "
            "10.11.8): install mariadb-client before loading a dump"
        )
    return ("--binary-mode", "--sandbox", "--local-infile=0")


def load_failed(child: process.Child) -> BackupFailed:
    """Given the ended client of a load that failed, return the error to raise."""
    if any(r in child.stderr_tail for r in REFUSED):
        return BackupFailed(
            "the dump holds a mariadb client command (such as system, \\! or tee, which run "
            "programs or touch files on this machine): the client refused it, and nothing "
            "of it ran"
        )
    return ToolFailed("mysql", child.proc.returncode, child.stderr_tail)


class MySQLLoader:
    """Loads a mysql backup with the mariadb/mysql client."""

    def __init__(self, job: RestoreJob) -> None:
        self.job = job
        self.client_bin = process.which("mariadb", "mysql") or "mysql"
        self.server = server_of(self.client_bin, job.source.conn)

    def _run(self, sql: str) -> str:
        cmd, fds = with_secret(self.client_bin, self.job.source.conn, ("-N", "-B"))
        return process.run(cmd, name="mysql", input=sql.encode(), pass_fds=fds, server=self.server)

    def _target_db(self, details: dict[str, Any]) -> str | None:
        if not details.get("single_database"):
            if self.job.source.databases:
                raise UsageError(
                    "--database NAME restores a single-database backup; this one holds "
                    f"{', '.join(details.get('databases', [])) or 'all databases'}"
                )
            return None
        if self.job.source.databases:
            return self.job.source.databases[0]
        return str(details["databases"][0])

    def check(self, details: dict[str, Any]) -> None:
        if details.get("physical") == "mariabackup":
            raise BackupFailed(
                "this backup is a physical MariaDB backup: "
                "restore it --into mysqldata --dir DATADIR"
            )
        if details.get("server") != "mysql":
            raise BackupFailed(
                "this backup is not a MySQL dump: restore it --into "
                + str(details.get("server", "dir"))
            )
        self._run("SELECT 1")

    def load(self, reader: Reader, details: dict[str, Any]) -> str:
        db = self._target_db(details)
        args = guarded(self.client_bin)
        if db:
            self._run(f"CREATE DATABASE IF NOT EXISTS {_quote_ident(db)}")
            args += ("--database", db)
        cmd, fds = with_secret(self.client_bin, self.job.source.conn, args)
        child = process.feed(cmd, reader, name="mysql", pass_fds=fds, server=self.server)
        if child.proc.returncode != 0:
            raise load_failed(child)
        return f"loaded into database {db}" if db else "loaded all databases"

"""drill: restore a backup into scratch space that tiffin creates and removes, and check the
copy against what the manifest recorded at backup time, so that an empty or cut dump fails.

Where it goes: `--into mysql|pgsql` loads the dump, whole and as it is, into a throwaway
server tiffin starts (tiffin.engine.scratch: its own folder, a private socket, no TCP,
jailed), never the server the connection options name; `--into dir|sqlite` restore into a
fresh temporary folder (under --dir if given). All is removed at the end, passed, failed or
interrupted. The loading client runs no client-side command the dump holds (psqlfeed,
mysql.guarded). The verdict: NAME.drill.json. `--into mysql --to-time`: drillpitr.py.

The checks, against the manifest's "source" details:
- mysql/pgsql: every database and every table recorded is there. A table whose rows were
  counted exactly at backup time ("rows") and had rows must have rows, and the tables so
  counted must hold, together, at least 90% of the rows recorded. The counts are taken just
  before the dump starts, not inside its snapshot, so writes in between make small
  differences: those are warnings, not failures. Tables too large to count at backup time
  ("rows_estimated") are checked for presence only, with a warning if one comes back empty.
- sqlite: every table, with exactly the rows recorded (counted on the stored copy).
- data: at least 90% of the files and bytes recorded, and one file if there were any.
- pgdata, mysqldata (--physical): recovered in a scratch server, checked as mysql/pgsql."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tiffin import __version__
from tiffin.catalog import drillrecord
from tiffin.catalog.holdings import latest, read_manifest
from tiffin.catalog.manifest import Manifest
from tiffin.catalog.naming import default_label
from tiffin.commands import drillphysical, drillpitr, pgdrill
from tiffin.commands.drillsql import dump_major, mysql_counts, pg_counts
from tiffin.engine import process
from tiffin.engine.scratch import ScratchMariaDB, ScratchPostgres
from tiffin.engine.stored import check_stored, decoded
from tiffin.engine.streams import Reader
from tiffin.errors import BackupFailed, Failed, NotFound, TiffinError, UsageError
from tiffin.job import DrillJob, RestoreJob, SourceSpec
from tiffin.sources import ANY_PHYSICAL, INTO
from tiffin.sources.directory import DirectoryLoader
from tiffin.sources.mysql import MySQLLoader
from tiffin.sources.postgresql import PostgresLoader
from tiffin.sources.sqlite import SqliteLoader, table_counts
from tiffin.targets import Target, connected
from tiffin.tell import metrics, notices, notify

WHAT_OF = {into: kind.what for into, kind in INTO.items()}
INTO_OF = {v: k for k, v in WHAT_OF.items()}
MIN_SHARE = 0.9
TEMP_SCHEMAS = ("pg_temp_", "pg_toast_temp_")
MAX_WARNINGS = 5


class DrillFailed(Failed):
    """The drill of NAME failed; str() is the reason. SUMMARY: what was checked, if the checks
    ran; RECORDED: whether it is a verdict on the backup (recorded beside it); `warnings`:
    what the report adds (a record that could not be stored)."""

    def __init__(
        self, name: str, reason: str, summary: str | None = None, recorded: bool = True
    ) -> None:
        self.name = name
        self.summary = summary
        self.recorded = recorded
        self.warnings: list[str] = []
        super().__init__(f"Drill of {name}", reason)


@dataclass(frozen=True)
class DrillResult:
    name: str
    summary: str
    seconds: float
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _latest(
    target: Target, what: str, label: str | None, source: str | None = None
) -> tuple[str, Manifest]:
    found = latest(target, label, what, source)
    if found is None or found.manifest is None:
        of = f" of the source {source}" if source is not None else ""
        raise NotFound(f"there is no complete {what} backup{of} here to drill as 'latest'")
    return found.name, found.manifest


def check_tables(
    details: Mapping[str, Any], restored: Mapping[str, dict[str, int] | None]
) -> tuple[list[str], list[str], str]:
    """Given a database backup's manifest details and the restored {database: {table: rows}}
    (None for a database not restored), return (problems, warnings, summary) by the rules
    of this module's docstring. Pure."""
    problems: list[str] = []
    warnings: list[str] = []
    tables: dict[str, list[str]] = dict(details.get("tables") or {})
    exact: dict[str, dict[str, int]] = dict(details.get("rows") or {})
    estimated: dict[str, dict[str, int]] = dict(details.get("rows_estimated") or {})
    dbs = list(dict.fromkeys([*details.get("databases", []), *tables]))
    if details.get("omitted"):
        warnings.append("the manifest left out per-table details (too many): fewer checks ran")
    ntables = nrows = want = got = 0
    for db in dbs:
        have = restored.get(db)
        if have is None:
            if tables.get(db) or db in exact:
                problems.append(f"database {db} is missing")
            continue
        for t in tables.get(db, []):
            if details.get("server") == "pgsql" and t.startswith(TEMP_SCHEMAS):
                continue  # another session's temporary table: never in a dump
            if t not in have:
                problems.append(f"table {db}.{t} is missing")
                continue
            ntables += 1
            nrows += have[t]
            if t in exact.get(db, {}):
                r, c = exact[db][t], have[t]
                want, got = want + r, got + c
                if r > 0 and c == 0:
                    problems.append(f"table {db}.{t} is empty; it held {r:,} rows at backup time")
                elif c != r:
                    warnings.append(f"table {db}.{t} has {c:,} rows, {r:,} when the backup began")
            elif estimated.get(db, {}).get(t, 0) > 0 and have[t] == 0:
                warnings.append(f"table {db}.{t} is empty; the server estimated it had rows")
    if want and got < MIN_SHARE * want:
        problems.append(
            f"only {got:,} of the {want:,} rows counted at backup time came back "
            f"(under {MIN_SHARE:.0%})"
        )
    if not exact and tables:
        warnings.append("the manifest records no row counts: only tables were checked")
    checked = len([d for d in dbs if restored.get(d) is not None])
    summary = f"{_n(checked, 'database')}, {_n(ntables, 'table')}, {_n(nrows, 'row')}"
    return problems, warnings, summary


def _n(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def check_sqlite(details: Mapping[str, Any], have: Mapping[str, int]) -> tuple[list[str], str]:
    """Given a sqlite backup's details and the restored {table: rows}, return (problems,
    summary): every table recorded, with exactly its rows. Pure."""
    problems: list[str] = []
    recorded: dict[str, int] = dict(details.get("tables") or {})
    for t, r in recorded.items():
        if t not in have:
            problems.append(f"table {t} is missing")
        elif have[t] != r:
            problems.append(f"table {t} has {have[t]:,} rows; the backup held {r:,}")
    return problems, f"{_n(len(have), 'table')}, {_n(sum(have.values()), 'row')}"


def check_files(details: Mapping[str, Any], files: int, size: int) -> tuple[list[str], list[str]]:
    """Given a data backup's details and the files and bytes restored, return (problems,
    warnings) by the rules of this module's docstring. Pure."""
    problems: list[str] = []
    warnings: list[str] = []
    want_files, want_bytes = int(details.get("files", 0)), int(details.get("bytes", 0))
    if want_files and (files == 0 or files < MIN_SHARE * want_files):
        problems.append(f"only {files:,} of the {want_files:,} files came back")
    elif files != want_files:
        warnings.append(f"{files:,} files came back, {want_files:,} when the backup began")
    if want_bytes and size < MIN_SHARE * want_bytes:
        problems.append(f"only {size:,} of the {want_bytes:,} bytes of files came back")
    elif size != want_bytes:
        warnings.append(f"{size:,} bytes of files came back, {want_bytes:,} when it began")
    return problems, warnings


def _walk(root: str) -> tuple[int, int]:
    files = size = 0
    for top, _dirs, names in os.walk(root):
        for n in names:
            st = os.lstat(os.path.join(top, n))
            if stat.S_ISREG(st.st_mode):
                files, size = files + 1, size + st.st_size
    return files, size


def _restore_job(job: DrillJob, **source: Any) -> RestoreJob:
    spec = SourceSpec(job.source.what, job.source.conn, **source)
    return RestoreJob(job.target, job.name, job.target_options, job.into, source=spec)


def _drill_files(
    job: DrillJob, stream: Reader, details: dict[str, Any]
) -> tuple[list[str], list[str], str]:
    parent = os.path.expanduser(job.workdir) if job.workdir else None
    try:
        scratch = tempfile.mkdtemp(prefix="tiffin_drill_", dir=parent)
    except OSError as exc:
        raise BackupFailed(f"cannot make a scratch folder in {parent}: {exc.strerror}") from None
    try:
        if job.into == "dir":
            DirectoryLoader(_restore_job(job, dir=scratch)).load(stream, details)
            files, size = _walk(scratch)
            problems, warnings = check_files(details, files, size)
            return problems, warnings, f"{_n(files, 'file')}, {_n(size, 'byte')}"
        path = os.path.join(scratch, "drill.sqlite")
        loader = SqliteLoader(_restore_job(job, file=path))
        loader.check(details)
        loader.load(stream, details)
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            have = table_counts(conn)
        finally:
            conn.close()
        problems, summary = check_sqlite(details, have)
        return problems, [], summary
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _drill_db(
    job: DrillJob, stream: Reader, details: dict[str, Any]
) -> tuple[list[str], list[str], str]:
    if job.into == "mysqldata":  # a physical backup: its scratch server starts on it
        return drillphysical.drill(job, stream, details, check_tables)
    mysql = job.into == "mysql"
    server = ScratchMariaDB() if mysql else ScratchPostgres(dump_major(details))
    with server:
        spec = SourceSpec(job.source.what, server.conn)
        restore = RestoreJob(job.target, job.name, job.target_options, job.into, source=spec)
        loader = MySQLLoader(restore) if mysql else PostgresLoader(restore)
        loader.check(details)
        loader.load(stream, details)
        dbs = dict.fromkeys([*details.get("databases", []), *(details.get("tables") or {})])
        count = mysql_counts if mysql else pg_counts
        problems, warnings, summary = check_tables(
            details, {db: count(server.conn, db) for db in dbs}
        )
    warnings[:0] = server.weaknesses()
    return problems, warnings, summary


def run(job: DrillJob) -> DrillResult:
    """Given a drill job, restore the backup into scratch space, check it, remove the scratch
    space, record the verdict beside the backup (tiffin.catalog.drillrecord) and return the result.
    Raise DrillFailed (naming the backup) if the backup cannot be read or loaded or a check
    fails; TargetError if the target cannot be reached."""
    t0 = time.monotonic()
    process.set_patience(job.target_options.timeout)  # bounds every wait on the server too
    with connected(job.target, job.target_options) as target:
        if job.into == ANY_PHYSICAL:  # latest --physical, with several physical kinds
            into = drillphysical.newest_into(target, job.label, job.source_id)
            job = replace(job, into=into, source=replace(job.source, what=WHAT_OF[into]))
        try:
            result = _run(job, target, t0)
        except DrillFailed as exc:
            if exc.recorded:
                rec = drillrecord.record(exc.name, job.into, False, exc.summary, (), str(exc))
                exc.warnings += drillrecord.store(target, rec)
            raise
        rec = drillrecord.record(result.name, job.into, True, result.summary, result.warnings)
        noted = drillrecord.store(target, rec)
    return DrillResult(result.name, result.summary, result.seconds, (*result.warnings, *noted))


def _run(job: DrillJob, target: Target, t0: float) -> DrillResult:
    """Drill job's backup at TARGET (run()'s work but for the record)."""
    what = WHAT_OF[job.into]
    if job.to_time is not None and job.into == "mysql":  # replayed to a time (SPEC §6)
        return DrillResult(*drillpitr.run(target, job), time.monotonic() - t0)
    if job.name == "latest":
        name, manifest = _latest(target, what, job.label, job.source_id)
    else:
        name = job.name
        try:
            manifest = read_manifest(target, name)
        except NotFound:
            if target.stat(name) is None:
                raise NotFound(f"there is no backup named {name} here") from None
            raise DrillFailed(name, "it has no manifest (incomplete): nothing to check") from None
    if manifest.what != what:
        raise DrillFailed(
            name,
            f"it is a {manifest.what} backup: drill it --into {INTO_OF[manifest.what]}",
            recorded=False,
        )
    try:
        raw, stream = decoded(target, name, manifest, job.identity)
        try:
            if job.into == "pgdata":
                problems, warnings, summary = pgdrill.drill(
                    job.target, job.target_options, stream, manifest, check_tables
                )
            else:
                kind = _drill_files if job.into in ("dir", "sqlite") else _drill_db
                problems, warnings, summary = kind(job, stream, manifest.source)
        finally:
            stream.close()
        check_stored(raw, manifest, name)
    except UsageError:
        raise
    except TiffinError as exc:
        raise DrillFailed(name, str(exc)) from exc
    if problems:
        raise DrillFailed(name, "; ".join(problems), summary)
    more = len(warnings) - MAX_WARNINGS
    shown = warnings[:MAX_WARNINGS] + (
        [f"... and {more} more such differences"] if more > 0 else []
    )
    return DrillResult(name, summary, time.monotonic() - t0, tuple(shown))


def announce(job: DrillJob, note: Callable[[str], None]) -> None:
    """Ping --ping-url's start, if given; a ping that fails is only noted."""
    if job.ping_url:
        try:
            notify.ping(job.ping_url, "start")
        except TiffinError as exc:
            note(f"tiffin: could not send the start ping: {exc}")


def send_report(
    job: DrillJob,
    lines: list[str],
    ok: bool,
    note: Callable[[str], None],
    seconds: float = 0.0,
    out: Callable[[str], None] | None = None,
) -> None:
    """Given the drill's report lines, whether it passed and how long it took, record its
    metrics, ping --ping-url, and send the report to --notify and --email, as a backup does.
    What fails is only noted: a metric or notice as a WARNING line through OUT (stdout)."""
    if job.ping_url:
        try:
            notify.ping(job.ping_url, "" if ok else "fail")
        except TiffinError as exc:
            note(f"tiffin: could not send the {'success' if ok else 'failure'} ping: {exc}")
    host = default_label(os.environ.get("HOSTNAME"))
    what = job.source.what
    outcome = metrics.Outcome(
        metrics.DRILL, metrics.job_label(job.label or host, what), what, job.target.redacted(),
        ok, time.time(), seconds,
    )  # fmt: skip
    warned = metrics.record(outcome, job.metrics_file, job.pushgateway)
    status = "FAILED" if not ok else "WARNING" if any("WARNING" in x for x in lines) else "OK"
    body = "\n".join(
        [
            *lines,
            *warned,
            "",
            f"Target: {job.target.redacted()}",
            "",
            "-- ",
            f"tiffin {__version__}",
        ]
    )
    title = f"Drill result for {host}: {status}"
    if job.notify:
        warned += notices.send(job.notify, title, body, status)
    for line in warned:
        (out or note)(line)
    if not job.emails:
        return
    try:
        sender = os.environ.get("TIFFIN_MAIL_FROM") or f"tiffin@{host}"
        msg = notify.message(title, sender, job.emails, body, host)
        notify.send(msg, notify.smtp_from_env(), job.target_options.insecure)
    except TiffinError as exc:
        note(f"tiffin: could not send the report to {', '.join(job.emails)}: {exc}")

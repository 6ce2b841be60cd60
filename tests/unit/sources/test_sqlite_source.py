"""The sqlite source against a real database that another process keeps writing to."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tiffin.errors import BackupFailed, UsageError
from tiffin.job import RestoreJob, SourceSpec, TargetURL
from tiffin.sources.sqlite import SqliteLoader, SqliteSource

TOTAL = 1_000_000

# A busy application: a transfer every few milliseconds, each a transaction that moves an
# amount from a to b and logs it, so that a+b is constant and b is the sum of the log.
WRITER = textwrap.dedent("""
    import random, sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
    filler = "x" * 300
    while True:
        amount = random.randint(1, 100)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE accounts SET balance = balance - ? WHERE name = 'a'", (amount,))
        conn.execute("INSERT INTO log (amount, note) VALUES (?, ?)", (amount, filler))
        conn.execute("UPDATE accounts SET balance = balance + ? WHERE name = 'b'", (amount,))
        conn.execute("COMMIT")
        time.sleep(0.002)
""")


def make_db(path: Path, journal_mode: str, rows: int = 20_000) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode={journal_mode}")
    conn.execute("CREATE TABLE accounts (name TEXT PRIMARY KEY, balance INTEGER NOT NULL)")
    conn.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, amount INTEGER, note TEXT)")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO accounts VALUES ('a', ?), ('b', 0)", (TOTAL,))
    conn.executemany(
        "INSERT INTO log (amount, note) VALUES (0, ?)", (("seed" * 50,) for _ in range(rows))
    )
    conn.execute("COMMIT")
    conn.close()


def log_rows(path: Path) -> int:
    conn = sqlite3.connect(path, timeout=60)
    try:
        return int(conn.execute("SELECT count(*) FROM log").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def writer() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.kill()
        p.wait()


def start_writer(path: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    procs.append(subprocess.Popen([sys.executable, "-c", WRITER, str(path)]))
    start = log_rows(path)
    deadline = time.monotonic() + 30
    while log_rows(path) < start + 50:  # the writer is well under way
        assert time.monotonic() < deadline, "the writer process made no progress"
        time.sleep(0.02)


def restore_job(dest: Path, overwrite: bool = False) -> RestoreJob:
    return RestoreJob(
        TargetURL("local", path="/b"),
        "n",
        into="sqlite",
        source=SourceSpec("sqlite", file=str(dest)),
        overwrite=overwrite,
    )


@pytest.mark.parametrize("journal_mode", ["wal", "delete"])
def test_dump_under_concurrent_writes_is_consistent_and_round_trips(
    journal_mode: str,
    tmp_path: Path,
    writer: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "app.db"
    make_db(db, journal_mode)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    start_writer(db, writer)
    source = SqliteSource(SourceSpec("sqlite", file=str(db)))
    details = source.prepare()
    assert details["file"] == str(db)
    assert details["journal_mode"] == journal_mode
    assert set(details["tables"]) == {"accounts", "log"}
    before = log_rows(db)
    reader = source.open()
    assert os.fstat(reader.fileno()).st_mode & 0o777 == 0o600
    assert list(scratch.iterdir()) == []  # unlinked as soon as it was open
    dump = reader.read()
    reader.close()
    assert log_rows(db) > before  # the writer went on while the copy was made

    copy = tmp_path / "copy.db"
    copy.write_bytes(dump)
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    balances = dict(conn.execute("SELECT name, balance FROM accounts").fetchall())
    moved = conn.execute("SELECT sum(amount) FROM log").fetchone()[0]
    rows = conn.execute("SELECT count(*) FROM log").fetchone()[0]
    conn.close()
    assert balances["a"] + balances["b"] == TOTAL
    assert balances["b"] == moved  # every transfer is whole: both updates and its log row
    assert details["tables"] == {"accounts": 2, "log": rows}  # counts of the copy itself

    dest = tmp_path / "restored" / "app.db"
    loader = SqliteLoader(restore_job(dest))
    loader.check(details)
    assert loader.load(io.BytesIO(dump), details) == f"restored 2 tables into {dest}"
    conn = sqlite3.connect(dest)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == journal_mode
    assert dict(conn.execute("SELECT name, balance FROM accounts").fetchall()) == balances
    assert conn.execute("SELECT count(*) FROM log").fetchone()[0] == rows
    conn.close()
    assert not (tmp_path / "restored" / "app.db.partial").exists()


def test_existing_destination_is_refused_without_overwrite(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    make_db(db, "delete", rows=10)
    source = SqliteSource(SourceSpec("sqlite", file=str(db)))
    details = source.prepare()
    with source.open() as reader:
        dump = reader.read()
    dest = tmp_path / "dest.db"
    dest.write_bytes(b"keep me")
    loader = SqliteLoader(restore_job(dest))
    with pytest.raises(BackupFailed, match=f"^{dest} exists; add --overwrite to replace it$"):
        loader.check(details)
    with pytest.raises(BackupFailed, match="add --overwrite"):
        loader.load(io.BytesIO(dump), details)
    assert dest.read_bytes() == b"keep me"
    (tmp_path / "dest.db-wal").write_bytes(b"a stale journal of the old database")
    SqliteLoader(restore_job(dest, overwrite=True)).load(io.BytesIO(dump), details)
    assert not (tmp_path / "dest.db-wal").exists()
    conn = sqlite3.connect(dest)
    assert conn.execute("SELECT count(*) FROM log").fetchone()[0] == 10
    conn.close()


def test_a_stream_that_is_not_a_database_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "dest.db"
    with pytest.raises(BackupFailed, match="not a sound SQLite database"):
        SqliteLoader(restore_job(dest)).load(io.BytesIO(b"garbage" * 1000), {})
    assert list(tmp_path.iterdir()) == []


def test_missing_or_foreign_file_fails_and_unset_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--file PATH"):
        SqliteSource(SourceSpec("sqlite"))
    with pytest.raises(UsageError, match="--file PATH"):
        SqliteLoader(RestoreJob(TargetURL("local", path="/b"), "n", source=SourceSpec("sqlite")))
    with pytest.raises(BackupFailed, match=f"^the SQLite file {tmp_path}/none.db does not exist$"):
        SqliteSource(SourceSpec("sqlite", file=str(tmp_path / "none.db"))).prepare()
    (tmp_path / "notes.txt").write_text("not a database at all")
    with pytest.raises(BackupFailed, match=f"^{tmp_path}/notes.txt is not a SQLite database$"):
        SqliteSource(SourceSpec("sqlite", file=str(tmp_path / "notes.txt"))).prepare()


def test_tilde_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert SqliteSource(SourceSpec("sqlite", file="~/app.db")).path == str(tmp_path / "app.db")

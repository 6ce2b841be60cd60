"""Faults of the source, mid-stream, for every database source and every target: the dump
tool killed, its session ended by the server, the server stopped. Each ends in exit 1, a
`Backup NAME FAILED` report quoting the tool, nothing published and nothing left behind."""

from __future__ import annotations

import os
import signal

import pytest

from tests.faults.conftest import Source
from tests.faults.midstream import alive, assert_failed, backup_args, mail_to, mailed, running
from tests.faults.places import KINDS, Place
from tests.faults.tried import tried
from tests.servers.smtp import SMTPServer

SOURCES = ["mysql", "pgsql"]
# FTPS is FTP's code through TLS: its own aborts are tried by the target and signal faults.
TARGETS = [k for k in KINDS if k != "ftps"]
CLEAN = (
    "exit 1, `Backup NAME FAILED:` quoting the tool's own error; nothing under the final "
    "name, no manifest, no `.partial`, no S3 upload left unaborted, no s3multi chunk"
)
TOOL = {"mysql": "mariadb-dump", "pgsql": "pg_dump"}


@tried(
    "fault",
    "The dump tool is killed (SIGKILL) mid-stream",
    "the dump tool is frozen once it has written 4 MB (12 MB for s3) and the upload is under "
    "way, then "
    "sent SIGKILL",
    CLEAN + "; the report says the tool `was killed by signal 9`, and so does the mail "
    "(`--email`: subject `Backup result for HOST: FAILED`)",
)
@pytest.mark.parametrize("source", SOURCES, indirect=True)
@pytest.mark.parametrize("place", TARGETS, indirect=True)
def test_dump_tool_killed_midstream(source: Source, place: Place, smtp_server: SMTPServer) -> None:
    to, mail_env = mailed(smtp_server)
    env = {**place.env, **source.env, **mail_env}
    args = backup_args(source.what, place, *source.args, "--compress", "none", "--email", to)
    with running(args, env) as run:
        tool = run.freeze_midstream(place)
        os.kill(tool, signal.SIGKILL)
        run.finish()
    report = assert_failed(run, f"{TOOL[source.what]} was killed by signal 9")
    place.assert_clean()
    mail = mail_to(smtp_server, to)
    assert mail["Subject"].endswith(": FAILED")
    assert report in mail.get_content()


@tried(
    "fault",
    "The dump tool fails mid-stream: the server ends its session",
    "the dump tool is frozen mid-stream; the server ends its session (MariaDB `KILL "
    "CONNECTION`, PostgreSQL `pg_terminate_backend`); the tool is thawed and meets the error",
    CLEAN + " (`Lost connection to server`, `Dumping the contents of table failed`)",
)
@pytest.mark.parametrize("source", SOURCES, indirect=True)
@pytest.mark.parametrize("place", TARGETS, indirect=True)
def test_dump_tool_fails_midstream(source: Source, place: Place) -> None:
    env = {**place.env, **source.env}
    with running(backup_args(source.what, place, *source.args, "--compress", "none"), env) as run:
        run.freeze_midstream(place)
        source.kill_sessions()
        run.finish()
    said = "Lost connection" if source.what == "mysql" else 'contents of table "big" failed'
    assert_failed(run, f"{TOOL[source.what]} exited with status", said)
    place.assert_clean()


@tried(
    "fault",
    "The database server is stopped mid-dump",
    "the dump tool is frozen mid-stream; the database server is stopped (SIGTERM to mariadbd, "
    "fast shutdown of postgres); the tool is thawed (the server is restarted after the test)",
    CLEAN,
)
@pytest.mark.parametrize("source", SOURCES, indirect=True)
@pytest.mark.parametrize("place", TARGETS, indirect=True)
def test_database_server_stopped_mid_dump(source: Source, place: Place) -> None:
    env = {**place.env, **source.env}
    with running(backup_args(source.what, place, *source.args, "--compress", "none"), env) as run:
        tool = run.freeze_midstream(place)
        source.server.stop()
        run.finish()
    assert_failed(run, f"{TOOL[source.what]} exited with status")
    assert not alive(tool)
    place.assert_clean()

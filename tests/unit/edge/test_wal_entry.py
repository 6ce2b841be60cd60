"""The lean reading (walask: the restore_command client and the lean entry) takes the usual
wal-push and wal-fetch lines itself, and hands anything else to the full command line, which
says what is wrong."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tiffin import walargs
from tiffin.commands import schedule, walask
from tiffin.errors import UsageError


def test_the_usual_lines_are_read_leanly() -> None:
    assert walask.lean_values(["s3", "bucket", "wal", "pg_wal/0001", "--label=db1"]) == (
        ["s3", "bucket", "wal", "pg_wal/0001"],
        {"label": "db1"},
    )
    assert walask.lean_values(["--timeout", "30", "--insecure", "local", "/b", "p"]) == (
        ["local", "/b", "p"],
        {"timeout": 30.0, "insecure": True},
    )
    assert walask.lean_values(["--env-file", "a", "--env-file=b", "x"]) == (
        ["x"],
        {"env_file": ["a", "b"]},
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["-h"],
        ["--lab", "x"],
        ["--timeout", "0"],
        ["--timeout", "soon"],
        ["--label"],
        ["--label", "--debug"],
        ["--insecure=yes"],
        ["--compress", "zstd"],
    ],
)
def test_anything_else_goes_to_the_full_command_line(argv: list[str]) -> None:
    assert walask.lean_values(argv) is None


def test_a_wal_job_takes_the_target_and_the_files() -> None:
    job = walargs.wal_job("wal-fetch", ["local", "/b", "sub", "0000000100000000000000A1", "p"], {})
    assert job.target.path == "/b/sub" and job.name == "0000000100000000000000A1"
    assert job.path == "p" and job.key
    push = walargs.wal_job(
        "wal-push", ["s3://bucket/wal", "pg_wal/000000010000000000000001"], {"label": "db"}
    )
    assert (push.target.host, push.target.path, push.label) == ("bucket", "wal", "db")


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("wal-push", ["local", "/b"]),
        ("wal-fetch", ["local", "/b", "only-name"]),
        ("wal-push", ["local", "/b", "sub", "more", "pg_wal/x"]),
    ],
)
def test_a_line_without_its_files_is_a_usage_error(command: str, argv: list[str]) -> None:
    with pytest.raises(UsageError, match=r"needs HOW WHERE|unexpected argument"):
        walargs.wal_job(command, argv, {})


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("wal-fetch", ["local", "/b", "../../etc/passwd", "pg_wal/RECOVERYXLOG"]),
        ("wal-fetch", ["local", "/b", "x/../000000010000000000000001", "p"]),
        ("wal-fetch", ["local", "/b", "", "p"]),
        ("wal-push", ["local", "/b", "/var/lib/postgresql/postgresql.conf"]),
        ("wal-push", ["local", "/b", "pg_wal/00000001000000000000000G"]),
    ],
)
def test_a_name_postgresql_never_passes_is_a_usage_error(command: str, argv: list[str]) -> None:
    with pytest.raises(UsageError, match="is not the name of a WAL"):
        walargs.wal_job(command, argv, {})


def test_the_lean_and_the_full_reading_name_the_archive_alike() -> None:
    from tiffin.cli import parse

    argv = [
        "wal-fetch",
        "local",
        "/b",
        "--env-file",
        "e",
        "--label=x",
        "0000000100000000000000A1",
        "p",
    ]
    _, args, values = parse(argv)
    lean = walask.lean_values(argv[1:])
    assert lean is not None
    assert walargs.spool_key("wal-fetch", args, values) == walargs.spool_key("wal-fetch", *lean)


def test_without_tiffin_on_path_the_command_written_for_later_still_runs_tiffin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sys, "argv", ["-c"])
    argv = schedule.tiffin_argv()
    assert argv[0] == sys.executable
    run = subprocess.run([*argv, "--version"], capture_output=True, text=True, cwd="/")
    assert run.returncode == 0 and run.stdout.startswith("tiffin "), run.stderr

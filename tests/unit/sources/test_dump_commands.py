"""The dump commands are pure functions: check what they ask of the tools."""

from __future__ import annotations

import pytest

from tiffin.errors import BackupFailed
from tiffin.job import DBConn
from tiffin.sources.mysql import choose_consistency, dump_command, with_secret
from tiffin.sources.pgclients import pick_client
from tiffin.sources.postgresql import dump_commands, pg_env


def test_auto_consistency_locks_when_any_table_is_not_innodb():
    assert choose_consistency("auto", {"InnoDB": 3}) == "single-transaction"
    assert choose_consistency("auto", {}) == "single-transaction"
    assert choose_consistency("auto", {"InnoDB": 3, "MyISAM": 1}) == "lock"
    assert choose_consistency("auto", {"Aria": 1}) == "lock"
    assert choose_consistency("lock", {"InnoDB": 1}) == "lock"


def test_mysql_dump_command():
    args = dump_command("mariadb-dump", (), "single-transaction", False, "")
    assert "--single-transaction" in args and "--all-databases" in args
    assert {"--routines", "--triggers", "--events"} <= set(args)
    args = dump_command("mariadb-dump", ("a", "b"), "lock", True, "--dump-slave=2")
    assert "--lock-all-tables" in args and "--dump-slave=2" in args
    assert args[-3:] == ("--", "a", "b") and "--databases" in args
    assert dump_command("x", ("only",), "lock", False, "")[-2:] == ("--", "only")


def test_mysql_password_goes_through_a_descriptor_first():
    cmd, fds = with_secret("mariadb-dump", DBConn("127.0.0.1", 3306, "u", "s3cret"), ("-x",))
    try:
        assert cmd[1] == f"--defaults-extra-file=/dev/fd/{fds[0]}"
        assert not any("s3cret" in a for a in cmd)
    finally:
        import os

        for fd in fds:
            os.close(fd)


def test_pg_password_only_in_the_environment():
    env = pg_env(DBConn("h", 5, "u", "pw"), "db")
    assert env["PGPASSWORD"] == "pw" and env["PGDATABASE"] == "db"


def test_pg_dumpall_without_superuser_skips_role_passwords():
    [cmd] = dump_commands("pg_dumpall", "pg_dump", (), superuser=False)
    assert "--no-role-passwords" in cmd and "-w" in cmd
    [cmd] = dump_commands("pg_dumpall", "pg_dump", ("one",), superuser=True)
    assert cmd[0] == "pg_dump" and "--create" not in cmd
    assert all("--create" in c for c in dump_commands("a", "pg_dump", ("x", "y"), True))


def test_pg_client_matching_the_server_is_chosen():
    avail = {13: "/13/pg_dump", 15: "/15/pg_dump", 16: "/16/pg_dump"}
    assert pick_client("pg_dump", 15, avail) == "/15/pg_dump"
    assert pick_client("pg_dump", 14, avail) == "/15/pg_dump"
    with pytest.raises(BackupFailed, match="pg_dump 16 is older than the PostgreSQL 17 server"):
        pick_client("pg_dump", 17, avail)

"""Passwords never appear on any process's command line, in output or in a manifest."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tests.e2e.helpers import tiffin
from tests.servers.env import tiffin_env


class CmdlinePoller:
    """Reads every /proc/*/cmdline every millisecond or so while a run goes on."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.seen: list[str] = []
        self.scans = 0
        self.processes: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == os.getpid():
                    continue
                try:
                    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if raw:
                    self.processes.add(raw.split(b"\0")[0].decode(errors="replace"))
                if self.secret in raw:
                    self.seen.append(raw.decode(errors="replace"))
            self.scans += 1

    def __enter__(self) -> CmdlinePoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_mysql_password_never_on_a_command_line(mariadb, tmp_path):
    mariadb.sql("CREATE DATABASE IF NOT EXISTS sec_m")
    mariadb.sql(
        "CREATE TABLE IF NOT EXISTS t (i INT); INSERT INTO t SELECT seq FROM seq_1_to_20000",
        "sec_m",
    )
    env = tiffin_env(tmp_path / "home", **mariadb.client_env())
    with CmdlinePoller(mariadb.password) as poll:
        r = tiffin(
            [
                "backup",
                "mysql",
                "local",
                str(tmp_path / "b"),
                *mariadb.conn_args(),
                "--debug",
                "--database",
                "sec_m",
            ],
            env,
        )
        tiffin(
            [
                "restore",
                "local",
                str(tmp_path / "b"),
                "latest",
                "--into",
                "mysql",
                *mariadb.conn_args(),
                "--debug",
            ],
            env,
        )
    assert poll.seen == []
    assert any("mariadb-dump" in p or "mysqldump" in p for p in poll.processes), poll.processes
    assert mariadb.password not in r.stdout + r.stderr
    for f in (tmp_path / "b").iterdir():
        assert mariadb.password.encode() not in f.read_bytes()


def test_pgsql_password_never_on_a_command_line(postgres, tmp_path):
    env = tiffin_env(tmp_path / "home", **postgres.client_env())
    with CmdlinePoller(postgres.password) as poll:
        r = tiffin(
            ["backup", "pgsql", "local", str(tmp_path / "b"), *postgres.conn_args(), "--debug"], env
        )
    assert poll.seen == []
    assert any("pg_dump" in p for p in poll.processes), poll.processes
    assert postgres.password not in r.stdout + r.stderr
    for f in (tmp_path / "b").iterdir():
        assert postgres.password.encode() not in f.read_bytes()

"""mysql --physical failures made real: mariabackup missing, the target full, the server
stopped mid-backup. Each exits 1 with one sentence and publishes nothing."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.e2e.helpers import leftovers, tiffin
from tests.e2e.test_mariabackup import BINLOG, env, source
from tests.faults.midstream import alive, children_of, running, wait_for, written
from tests.faults.tried import tried
from tests.servers.mariadb import MariaDB

assert env and source  # the fixtures these tests use


@tried(
    "fault",
    "mysql --physical where mariabackup is not installed",
    "PATH holds the MariaDB clients but no mariabackup",
    "exit 1, `mariabackup is not installed here: install mariadb-backup`, before the server is "
    "contacted; nothing at the target",
)
def test_physical_backup_without_mariabackup_fails_and_stores_nothing(
    source: MariaDB, env: dict[str, str], tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mariadb", "mariadb-dump"):
        os.symlink(f"/usr/bin/{tool}", bin_dir / tool)
    out = tmp_path / "b"
    r = tiffin(
        ["backup", "mysql", "local", str(out), "--physical", *source.conn_args()],
        {**env, "PATH": str(bin_dir)},
        expect=1,
    )
    assert "mariabackup is not installed here: install mariadb-backup" in r.stderr
    assert leftovers(out) == []


@tried(
    "fault",
    "mysql --physical to a full disk",
    "the target folder is a 1 MiB tmpfs; the backup is larger",
    "exit 1, `the disk holding ... is full`; nothing under the final name, no `.partial`",
)
def test_physical_backup_to_a_full_disk_fails_and_publishes_nothing(
    source: MariaDB, env: dict[str, str], small_tmpfs: Path
) -> None:
    r = tiffin(
        ["backup", "mysql", "local", str(small_tmpfs), "--physical", "--compress", "none",
         *source.conn_args()],
        env,
        expect=1,
    )  # fmt: skip
    assert "FAILED: the disk holding" in r.stderr and "is full" in r.stderr
    assert leftovers(small_tmpfs) == []


@tried(
    "fault",
    "the MariaDB server stops in the middle of a mysql --physical backup",
    "mariabackup is frozen (SIGSTOP) after 2 MiB streamed, the server is stopped, mariabackup "
    "thawed",
    "exit 1 quoting mariabackup's own error line (`Server has gone away`); mariabackup is gone; "
    "nothing under the final name",
)
def test_server_stopped_mid_backup_fails_and_publishes_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    server = MariaDB(server_args=BINLOG).start()
    try:
        server.sql(
            "CREATE DATABASE big; USE big; CREATE TABLE big.t (id INT PRIMARY KEY, pad TEXT);"
            "INSERT INTO big.t SELECT seq, REPEAT(MD5(seq), 16) FROM seq_1_to_30000;"
        )
        out = tmp_path / "b"
        args = ["backup", "mysql", "local", str(out), "--physical", "--compress", "none",
                "--timeout", "20", *server.conn_args()]  # fmt: skip
        with running(args, {**env, **server.client_env()}) as run:
            found: list[int] = []

            def tool() -> bool:
                found[:] = [p for p, a in children_of(run.proc.pid) if "mariabackup" in a]
                return bool(found) and written(found[0]) > 2 << 20

            wait_for(tool, "mariabackup to stream 2 MiB")
            os.kill(found[0], signal.SIGSTOP)
            run.frozen.append(found[0])
            server.stop()
            run.finish()
        assert run.proc.returncode == 1, run.err
        assert "FAILED: mariabackup exited with status 1: " in run.err
        assert "Server has gone away" in run.err or "Lost connection" in run.err
        assert not alive(found[0])
        assert leftovers(out) == []
    finally:
        server.close()

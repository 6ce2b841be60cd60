"""`tiffin wal-fetch` as restore_command: a copy made by pg_basebackup without WAL recovers
from the archive alone, through every segment, to the last commit, then promotes."""

from __future__ import annotations

import subprocess
import time

from tests.e2e.helpers import tiffin_exe
from tests.servers.postgres import OS_USER, Postgres
from tests.wal import cluster


def test_recovery_through_wal_fetch_reaches_the_last_commit() -> None:
    with cluster.postgres_dir("tiffin-wal-") as home:
        folder = home / "archive"
        target = f"local {folder}"
        pg = Postgres(settings=cluster.archiving(cluster.push_command(target))).start()
        copy: Postgres | None = None
        try:
            pg.sql("CREATE TABLE markers (n int)")
            copy = Postgres(
                settings={
                    "restore_command": f"{tiffin_exe()} wal-fetch {target} "
                    f"--label {cluster.LABEL} %f %p",
                    "recovery_target_action": "promote",
                }
            )
            subprocess.run(
                [
                    pg.bin("pg_basebackup"),
                    "-h",
                    str(pg.socket_dir),
                    "-p",
                    str(pg.port),
                    "-U",
                    "postgres",
                    "-D",
                    str(copy.datadir),
                    "-X",
                    "none",
                    "-c",
                    "fast",
                ],
                check=True,
                capture_output=True,
                user=OS_USER,
                group=OS_USER,
                extra_groups=[],
                cwd=home,
                stdin=subprocess.DEVNULL,
            )
            cluster.write_segments(pg, 6)
            pg.sql("INSERT INTO markers VALUES (1)")
            rows = pg.sql("SELECT count(*) FROM rows")
            last = cluster.write_segments(pg, 1)
            cluster.wait_drained(pg, last)
            (copy.datadir / "recovery.signal").touch()
            cluster.give(copy.datadir / "recovery.signal")
            copy.start()
            deadline = time.monotonic() + 180
            while copy.sql("SELECT pg_is_in_recovery()") != "f":
                assert time.monotonic() < deadline, "the copy did not finish recovery"
                time.sleep(0.2)
            assert copy.sql("SELECT n FROM markers") == "1"
            assert int(copy.sql("SELECT count(*) FROM rows")) >= int(rows) > 0
            log = copy.log_path.read_text(errors="replace")
            assert "restored log file" in log and "archive recovery complete" in log
        finally:
            if copy is not None:
                copy.close()
            pg.close()

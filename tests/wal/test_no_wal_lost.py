"""No WAL is ever lost (issue 14): a real PostgreSQL archives through `tiffin wal-push`
while the target is stopped, while wal-push is killed mid-upload, and while the disk is
full. Each time segments wait as .ready, then the archive ends complete: every segment,
each reading back checked, and pg_stat_archiver's last attempt a success."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.faults.tried import tried
from tests.servers.ftp import FTPServer
from tests.servers.postgres import Postgres
from tests.wal import cluster


@tried(
    "fault",
    "The target is down while PostgreSQL archives WAL",
    "a real PostgreSQL archives through `tiffin wal-push` to FTP; the FTP server is stopped, "
    "four segments are written, then the server is started again",
    "wal-push exits 1, the segments stay .ready; once the server is back every segment is "
    "archived and reads back checked, pg_stat_archiver's last attempt a success",
)
def test_segments_wait_while_the_target_is_down_then_all_archive(tmp_path: Path) -> None:
    ftp = FTPServer().start()
    try:
        with cluster.postgres_dir("tiffin-wal-") as home:
            env_file = home / "ftp.env"
            env_file.write_text(f"TIFFIN_FTP_PASSWORD={ftp.password}\n")
            cluster.give(env_file)
            target = f"ftp {ftp.user}@127.0.0.1:{ftp.port} wal --env-file {env_file}"
            pg = Postgres(settings=cluster.archiving(cluster.push_command(target))).start()
            try:
                cluster.wait_drained(pg, cluster.write_segments(pg, 2))
                ftp.stop()
                last = cluster.write_segments(pg, 4)
                state = cluster.wait_failures(pg)
                assert len(cluster.ready(pg)) >= 3 and state["ok"] == "f"
                ftp.start()
                final = cluster.wait_drained(pg, last)
                assert int(final["failed_count"]) >= 1
                cluster.assert_complete(ftp.root / "wal", last)
            finally:
                pg.close()
    finally:
        ftp.close()


def _wal_push_pids(folder: Path) -> list[int]:
    """The wal-push processes archiving to FOLDER (this test's own, by its unique path)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"wal-push" in argv and str(folder).encode() in argv and b"-c" not in argv:
            found.append(int(entry.name))
    return found


@tried(
    "fault",
    "wal-push killed mid-upload",
    "a backlog of twelve .ready segments drains to a local folder; the moment a temporary "
    "(.partial) is on disk, every wal-push process (the call and its helper) gets SIGKILL",
    "PostgreSQL retries; the temporary is never taken for the file; every segment ends "
    "archived, checked, with no temporary left",
)
def test_a_wal_push_killed_mid_upload_loses_nothing() -> None:
    with cluster.postgres_dir("tiffin-wal-") as home:
        folder, gate = home / "archive", home / "gate"
        command = cluster.push_command(f"local {folder}", gate)
        pg = Postgres(settings=cluster.archiving(command)).start()
        try:
            last = cluster.write_segments(pg, 12)
            cluster.wait_failures(pg)
            gate.touch()
            pg.sql("SELECT pg_switch_wal()")
            killed = 0
            deadline = time.monotonic() + 60
            while not killed:
                assert time.monotonic() < deadline, "never caught wal-push mid-upload"
                wal_dir = folder / f"{cluster.LABEL}.wal"
                uploading = wal_dir.is_dir() and any(
                    n.endswith(".partial") for n in os.listdir(wal_dir)
                )
                for pid in _wal_push_pids(folder) if uploading else []:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                time.sleep(0.002)
            cluster.wait_drained(pg, last)
            cluster.assert_complete(folder, last)
        finally:
            pg.close()


@tried(
    "fault",
    "The archive's disk fills",
    "PostgreSQL archives to a 6 MiB tmpfs; five segments are written; the tmpfs is then "
    "remounted at 400 MiB",
    "wal-push exits 1 saying the disk is full, segments stay .ready, nothing partial is "
    "published; once there is room every segment is archived and checked",
)
def test_a_full_disk_holds_segments_back_until_there_is_room() -> None:
    with cluster.postgres_dir("tiffin-wal-") as home:
        disk = home / "disk"
        disk.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=6m,mode=0755", "tmpfs", str(disk)], check=True
        )
        try:
            cluster.give(disk, 0o755)
            pg = Postgres(settings=cluster.archiving(cluster.push_command(f"local {disk}")))
            pg.start()
            try:
                last = cluster.write_segments(pg, 5)
                cluster.wait_failures(pg)
                assert cluster.ready(pg)
                log = pg.log_path.read_text(errors="replace")
                assert "is full" in log, log[-2000:]
                subprocess.run(["mount", "-o", "remount,size=400m", str(disk)], check=True)
                cluster.wait_drained(pg, last)
                cluster.assert_complete(disk, last)
            finally:
                pg.close()
        finally:
            subprocess.run(["umount", "-l", str(disk)], check=False)

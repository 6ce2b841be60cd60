"""Recovery from an FTP target: the password the restore_command needs is kept in a file
only the data directory's owner reads, never in postgresql.auto.conf."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

from tests.e2e.helpers import tiffin, tiffin_exe
from tests.pitr import cluster
from tests.pitr.cluster import LABEL, mark, markers, switch_and_wait
from tests.servers.env import tiffin_env
from tests.servers.ftp import FTPServer
from tests.servers.postgres import OS_USER, Postgres
from tests.servers.proc import SHARED_TMP


def test_recovery_over_ftp_keeps_the_password_out_of_the_config(ftp_server: FTPServer) -> None:
    top = Path(tempfile.mkdtemp(prefix="tiffin-pitr-", dir=SHARED_TMP))
    top.chmod(0o755)
    where = f"{ftp_server.user}@{ftp_server.host}:{ftp_server.port}"
    # The archiving server's own secrets file, as a user would give archive_command one.
    secrets = top / "archive.env"
    secrets.write_text(f"TIFFIN_FTP_PASSWORD={ftp_server.password}\n")
    user = pwd.getpwnam(OS_USER)
    os.chown(secrets, user.pw_uid, user.pw_gid)
    secrets.chmod(0o600)
    push = f"{tiffin_exe()} wal-push ftp {where} pitr --env-file {secrets} --label {LABEL} %p"
    pg = Postgres(settings={"wal_level": "replica", "archive_mode": "on", "archive_command": push})
    copy = cluster.recovered()
    try:
        pg.start()
        env = tiffin_env(top / "home", TIFFIN_FTP_PASSWORD=ftp_server.password, **pg.client_env())
        pg.sql("CREATE TABLE markers (n int PRIMARY KEY, at timestamptz)")
        args = ["backup", "pgsql", "ftp", where, "pitr", *pg.conn_args(), "--physical"]
        tiffin([*args, "--label", LABEL], env)
        mark(pg, 1)
        switch_and_wait(pg)
        args = ["restore", "ftp", where, "pitr", "latest", "--into", "pgdata"]
        tiffin([*args, "--dir", str(copy.datadir)], env)
        auto = (copy.datadir / "postgresql.auto.conf").read_text()
        kept = copy.datadir / "tiffin-recovery.env"
        assert ftp_server.password not in auto
        assert f"--env-file {kept}" in auto and "wal-fetch" in auto
        assert kept.read_text() == f"TIFFIN_FTP_PASSWORD={ftp_server.password}\n"
        assert oct(kept.stat().st_mode & 0o777) == "0o600" and kept.owner() == OS_USER
        copy.start()
        cluster.wait_promoted(copy)
        assert markers(copy) == [1]
        assert ftp_server.password not in (copy.log_path.read_text())
    finally:
        copy.close()
        pg.close()
        shutil.rmtree(top, ignore_errors=True)

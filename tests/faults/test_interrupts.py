"""tiffin itself interrupted mid-backup: SIGTERM or SIGINT (it cleans up), SIGKILL (it cannot:
what it leaves is listed as incomplete, and prune removes it once it is old enough)."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from tests.e2e.helpers import tiffin
from tests.faults.conftest import BIG_DB
from tests.faults.midstream import (
    SIGINT_IGNORED,
    Run,
    alive,
    backup_args,
    children_of,
    mail_to,
    mailed,
    running,
    wait_for,
)
from tests.faults.places import KINDS, PARTIAL, Place
from tests.faults.tried import tried
from tests.servers.mariadb import MariaDB
from tests.servers.smtp import SMTPServer

DAY = 24 * 3600
# FTPS leaves what FTP leaves (the same files, through TLS): not run twice.
LEFTOVER_KINDS = [k for k in KINDS if k != "ftps"]


def args_for(mariadb: MariaDB, place: Place) -> list[str]:
    # gzip where the probe sees any byte; S3 needs 8 MiB through to start an upload.
    compress = "none" if place.s3 is not None else "gzip"
    conn = [*mariadb.conn_args(), "--database", BIG_DB, "--compress", compress]
    return backup_args("mysql", place, *conn)


def midway(place: Place) -> int:
    """Bytes to dump before the upload is under way: gzip holds a few MiB in its pool."""
    return place.midway if place.s3 is not None else 16 << 20


def interrupt_mid_backup(run: Run, place: Place, sig: int) -> None:
    """Freeze RUN's dump with the upload under way, send tiffin SIG; assert that it stopped
    its dump tool, ended with exit 1 and one `interrupted` report, and left PLACE clean."""
    tool = run.freeze_midstream(place, midway(place))
    run.proc.send_signal(sig)
    wait_for(lambda: not alive(tool), "the dump tool to be stopped by tiffin", 20)
    run.finish(timeout=60)
    assert run.proc.returncode == 1, run.err
    assert "Traceback" not in run.err, run.err
    assert re.search(
        r"^Backup \S+ FAILED: interrupted; stopped and cleaned up, nothing was published$",
        run.err,
        re.M,
    ), run.err
    place.assert_clean()


@tried(
    "fault",
    "tiffin receives SIGTERM or SIGINT mid-backup",
    "the mysql dump is frozen with the upload under way (gzip; none for S3), then tiffin is "
    "sent the signal (as `kill` or Ctrl-C would)",
    "exit 1 with `Backup NAME FAILED: interrupted; stopped and cleaned up, nothing was "
    "published`, no "
    "traceback; its dump tool is gone; nothing under the final name, no manifest, no "
    "`.partial`, no S3 upload left unaborted, no s3multi chunk; the mailed report (`--email`) "
    "says FAILED: interrupted",
)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("place", KINDS, indirect=True)
def test_tiffin_signalled_mid_backup(
    big_mysql: MariaDB, place: Place, sig: int, smtp_server: SMTPServer
) -> None:
    to, mail_env = mailed(smtp_server)
    env = {**place.env, **big_mysql.client_env(), **mail_env}
    with running([*args_for(big_mysql, place), "--email", to], env) as run:
        interrupt_mid_backup(run, place, sig)
    mail = mail_to(smtp_server, to)
    assert mail["Subject"].endswith(": FAILED")
    assert "FAILED: interrupted; stopped and cleaned up" in mail.get_content()


@tried(
    "fault",
    "tiffin is started with SIGINT ignored, then gets SIGINT mid-backup",
    "tiffin is started through a launcher that ignores SIGINT and execs it (as `nohup CMD &` "
    "does); the mysql dump is frozen with the upload under way; tiffin is sent SIGINT",
    "tiffin installs its own SIGINT handler whatever it inherited: exit 1 with `Backup NAME "
    "FAILED: interrupted; stopped and cleaned up, nothing was published`; its dump tool is "
    "gone; nothing under the final name, no `.partial`",
)
@pytest.mark.parametrize("place", ["local"], indirect=True)
def test_sigint_stops_a_run_started_with_sigint_ignored(big_mysql: MariaDB, place: Place) -> None:
    env = {**place.env, **big_mysql.client_env()}
    with running(args_for(big_mysql, place), env, launcher=SIGINT_IGNORED) as run:
        interrupt_mid_backup(run, place, signal.SIGINT)


@tried(
    "fault",
    "tiffin is killed (SIGKILL) mid-backup",
    "the mysql dump is frozen with the upload under way, tiffin is sent SIGKILL (the dump "
    "tool then dies of SIGPIPE); `tiffin list` and `tiffin prune --keep-last 1` run; the "
    "leftover's mtime is set 25 hours back (folders, FTP, SSH) and prune runs again",
    "nothing under the final name, no manifest; `list` shows the leftover as incomplete; "
    "prune keeps it while young (`may still be running`), removes it once 24 hours old",
)
@pytest.mark.parametrize("place", LEFTOVER_KINDS, indirect=True)
def test_tiffin_killed_leaves_an_incomplete_leftover_that_prune_clears(
    big_mysql: MariaDB, place: Place
) -> None:
    env = {**place.env, **big_mysql.client_env()}
    with running(args_for(big_mysql, place), env) as run:
        tool = run.freeze_midstream(place, midway(place))
        run.proc.kill()
        run.finish()
    wait_for(lambda: not alive(tool), "the orphaned dump tool to die of SIGPIPE", 20)
    assert children_of(run.proc.pid) == []
    place.assert_nothing_published()
    [left] = place.listing()
    assert not left["complete"], left
    prune = ["prune", place.url, "--keep-last", "1"]
    r = tiffin(prune, place.env)
    if place.kind == "s3":  # moto dates every upload 2010-11-10: old enough for prune at once
        assert "deleted" in r.stdout, r.stdout
        place.assert_clean()
        return
    assert "may still be running" in r.stdout and "Deleted 0" in r.stdout, r.stdout
    if place.folder is None:
        return  # S3 dates s3multi's chunks itself: they cannot be made old here
    old = time.time() - DAY - 3600
    for leftover in place.folder.iterdir():
        assert leftover.name.endswith(PARTIAL), leftover
        os.utime(leftover, (old, old))
    r = tiffin(prune, place.env)
    assert "deleted" in r.stdout, r.stdout
    assert place.stored() == {}

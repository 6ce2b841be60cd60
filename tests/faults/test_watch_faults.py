"""Faults around watching a backup (SPEC §7), made real: a stopped Pushgateway, a dead or
refusing --notify endpoint, a run refused before it starts, and many writers of one metrics
file at once. None of them may fail a backup, lose a series or show a password."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from tests.e2e.helpers import tiffin, tiffin_exe
from tests.e2e.test_metrics import SECRET, folder, one
from tests.e2e.test_notify import Sink
from tests.faults.tried import tried
from tests.servers.ports import free_port


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@tried(
    "fault",
    "A stopped Pushgateway and a dead --notify endpoint",
    "the suite's Pushgateway is stopped (by its PID) and --notify names a port nothing listens "
    "on; the URLs hold a password",
    "the backup exits 0 and is stored; stdout has one `WARNING: could not push the metrics to "
    "http://***@…: connection refused` and one `WARNING: could not send the report to json://…`"
    " line; the password is in no output",
)
def test_a_stopped_pushgateway_or_dead_notify_endpoint_never_fails_a_backup(
    pushgateway, tmp_path, tiffin_env
):
    data, store = folder(tmp_path), tmp_path / "store"
    port = pushgateway.port
    pushgateway.stop()  # a real one, stopped; the suite restarts it after this test
    args = ["backup", "data", "local", str(store), "--dir", str(data), "--label", "stopped"]
    args += ["--pushgateway", f"http://tiffin:{SECRET}@127.0.0.1:{port}"]
    args += ["--notify", f"json://tiffin:{SECRET}@127.0.0.1:{free_port()}/"]
    r = tiffin(args, tiffin_env())
    lines = r.stdout.splitlines()
    assert lines[0].startswith("Backup stopped_") and "completed" in lines[0]
    push = [x for x in lines if x.startswith("WARNING: could not push the metrics to")]
    note = [x for x in lines if x.startswith("WARNING: could not send the report to json://")]
    assert len(push) == 1 and "connection refused" in push[0], r.stdout
    assert len(note) == 1, r.stdout
    assert SECRET not in r.stdout + r.stderr
    assert len(list(store.glob("*.manifest.json"))) == 1


@tried(
    "fault",
    "A run refused with exit 2, with --metrics-file",
    "a bad --compress-level, an ftp:// --pushgateway, an unknown Apprise scheme, a "
    "--metrics-file in a missing folder",
    "exit 2 with one sentence quoting no password; no metrics file and no target folder are "
    "created",
)
def test_a_refused_run_touches_no_metrics(tmp_path, tiffin_env):
    data, store = folder(tmp_path), tmp_path / "store"
    prom = tmp_path / "m.prom"
    base = ["backup", "data", "local", str(store), "--dir", str(data), "--metrics-file", str(prom)]
    for bad in (
        ["--compress-level", "99"],
        ["--pushgateway", f"ftp://u:{SECRET}@127.0.0.1/"],
        ["--notify", f"nosuchservice://{SECRET}@x/"],
    ):
        r = tiffin([*base, *bad], tiffin_env(), expect=2)
        assert SECRET not in r.stdout + r.stderr
    r = tiffin([*base[:-1], str(tmp_path / "no" / "m.prom")], tiffin_env(), expect=2)
    assert "--metrics-file" in r.stderr
    assert not prom.exists() and not store.exists()


@tried(
    "fault",
    "Three writers of one metrics file at once",
    "three processes each record 80 runs of their own job into one file that also holds "
    "another tool's line",
    "each writer finds its own write in the file after every write, whoever wrote since; every "
    "job's last value is there and the other tool's line is kept (without the flock, writes "
    "are lost)",
)
def test_two_writers_at_once_lose_neither_jobs_series(tmp_path):
    prom = tmp_path / "shared.prom"
    prom.write_text(
        "# HELP other_tool_up Another tool's line.\n# TYPE other_tool_up gauge\nother_tool_up 1\n"
    )
    n = 80
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(prom), job, str(n)])
        for job in ("alpha", "beta", "gamma")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    for job in ("alpha", "beta", "gamma"):  # each one's last write survived the others'
        assert one(prom, "tiffin_last_size_bytes", job) == n - 1
    assert "other_tool_up 1\n" in prom.read_text()


@tried(
    "fault",
    "Three backups at once into one metrics file",
    "three `tiffin backup` processes started together with one --metrics-file",
    "all exit 0 and each one's series is in the file; no temp file is left",
)
def test_two_backups_at_once_share_one_metrics_file(tmp_path, tiffin_env):
    prom = tmp_path / "shared.prom"
    env = tiffin_env()
    procs = []
    for label in ("one", "two", "three"):
        data = folder(tmp_path, label)
        argv = [tiffin_exe(), "backup", "data", "local", str(tmp_path / "store"), "--dir"]
        argv += [str(data), "--label", label, "--metrics-file", str(prom)]
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True))
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    for label in ("one", "two", "three"):
        assert one(prom, "tiffin_last_status", f"{label}-data") == 1
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


WRITER = """
import sys
from tiffin.tell import metrics
path, job, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
mine = 'tiffin_last_size_bytes{{job="{}",target="file:///x",what="data"}} {}'
for i in range(n):
    o = metrics.Outcome(metrics.BACKUP, job, "data", "file:///x", True, 1.0e9 + i, 0.1, i)
    assert metrics.write_file(path, o) == []
    with open(path) as f:  # whoever wrote since, under the lock, kept this write
        text = f.read()
    if mine.format(job, float(i)) + "\\n" not in text:
        sys.exit(f"{job}: its write {i} was lost")
"""


@tried(
    "fault",
    "A --notify endpoint that answers 500",
    "the test's own HTTP server behind Apprise's json:// answers 500",
    "the backup exits 0 and is stored; one `WARNING: could not send the report to "
    "json://tiffin:****@127.0.0.1…` line on stdout; the password is in no output",
)
def test_an_endpoint_that_refuses_is_a_warning_not_a_failure(sink, tmp_path, tiffin_env):
    data, store = tmp_path / "data", tmp_path / "store"
    data.mkdir()
    (data / "a").write_text("a")
    sink.status = 500
    url = f"json://tiffin:{SECRET}@127.0.0.1:{sink.port}/"
    r = tiffin(["backup", "data", "local", str(store), "--dir", str(data), "--notify", url])
    warnings = [x for x in r.stdout.splitlines() if x.startswith("WARNING: could not send")]
    assert len(warnings) == 1 and "json://tiffin:****@127.0.0.1" in warnings[0], r.stdout
    assert len(sink.got) == 1
    assert SECRET not in r.stdout + r.stderr
    assert len(list(store.glob("*.manifest.json"))) == 1


@tried(
    "fault",
    "A metrics file that cannot be written",
    "--metrics-file names a folder; then a symbolic link planted as its lock file",
    "the backup exits 0 and is stored; stdout has one `WARNING: could not write the metrics "
    "file ...` line each time; the link's target is untouched",
)
def test_a_metrics_file_that_cannot_be_written_is_a_warning(tmp_path, tiffin_env):
    data, store = folder(tmp_path), tmp_path / "store"
    blocked = tmp_path / "metrics.prom"
    blocked.mkdir()
    args = ["backup", "data", "local", str(store), "--dir", str(data)]
    r = tiffin([*args, "--metrics-file", str(blocked)], tiffin_env())
    assert [
        x for x in r.stdout.splitlines() if x.startswith("WARNING: could not write the metrics")
    ]
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / ".planted.prom.lock").symlink_to(victim)
    r = tiffin([*args, "--metrics-file", str(tmp_path / "planted.prom")], tiffin_env())
    warned = [x for x in r.stdout.splitlines() if x.startswith("WARNING: could not write")]
    assert len(warned) == 1 and "symbolic link" in warned[0], r.stdout
    assert victim.read_text() == "keep me" and not (tmp_path / "planted.prom").exists()
    assert len(list(store.glob("*.manifest.json"))) == 2

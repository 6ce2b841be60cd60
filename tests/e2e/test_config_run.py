"""tiffin run: jobs from a TOML file, one after another, each reported and mailed."""

from __future__ import annotations

import time
import uuid

from tests.e2e.helpers import backups, tiffin
from tests.servers.env import tiffin_env


def folder(root, files: int = 3):
    root.mkdir(parents=True)
    for i in range(files):
        (root / f"f{i}.txt").write_text(f"file {i}\n" * 100)
    return root


def write_config(path, out, to, photos, notes, missing):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""
[defaults]
to = "file://{out}"
label = "conf-host"
email = ["{to}"]
keep_daily = 7

[jobs.photos]
what = "data"
dir = "{photos}"
path = "photos"

[jobs.broken]
what = "data"
dir = "{missing}"
path = "broken"

[jobs.notes]
what = "data"
dir = "{notes}"
path = "notes"
compress = "zstd"
"""
    )


def test_run_runs_every_job_and_exits_1_when_one_failed(smtp_server, tmp_path):
    out, to = tmp_path / "b", f"run-{uuid.uuid4().hex[:8]}@noodles.example"
    conf = tmp_path / "tiffin.toml"
    write_config(
        conf, out, to, folder(tmp_path / "photos"), folder(tmp_path / "notes"), tmp_path / "gone"
    )
    env = tiffin_env(tmp_path / "home", TIFFIN_SMTP_URL=f"smtp://127.0.0.1:{smtp_server.port}")
    r = tiffin(["run", "--config", str(conf)], env, expect=1)
    [photo] = backups(out / "photos")
    [note] = backups(out / "notes")
    assert note.endswith(".data.tar.zst") and not (out / "broken").exists()
    completed = [line for line in r.stdout.splitlines() if line.endswith("bytes.")]
    assert completed[0].startswith(f"Backup {photo} completed.")
    assert completed[1].startswith(f"Backup {note} completed.")
    assert "Backup conf-host_" in r.stderr and f"the directory {tmp_path / 'gone'}" in r.stderr
    deadline = time.monotonic() + 15
    while len(mails := [m for m in smtp_server.messages() if to in str(m["To"])]) < 3:
        assert time.monotonic() < deadline, f"{len(mails)} mails"
        time.sleep(0.1)
    assert [m["Subject"] for m in mails] == [
        "Backup result for conf-host: OK",
        "Backup result for conf-host: FAILED",
        "Backup result for conf-host: OK",
    ]


def test_run_named_jobs_only_and_the_default_config_path(tmp_path):
    out, home = tmp_path / "b", tmp_path / "home"
    conf = home / ".config" / "tiffin" / "tiffin.toml"
    write_config(
        conf, out, "x@y.example", folder(tmp_path / "p"), folder(tmp_path / "n"), tmp_path / "gone"
    )
    conf.write_text(conf.read_text().replace('email = ["x@y.example"]', ""))
    env = tiffin_env(home)
    r = tiffin(["run", "notes"], env)
    assert len(backups(out / "notes")) == 1 and not (out / "photos").exists()
    assert r.stdout.startswith("Backup conf-host_")
    r = tiffin(["run", "notes", "nope"], env, expect=2)
    assert "no job named nope" in r.stderr and "photos, broken, notes" in r.stderr
    assert len(backups(out / "notes")) == 1  # nothing ran


def test_every_config_error_is_reported_at_once_and_nothing_runs(tmp_path):
    out = tmp_path / "b"
    conf = tmp_path / "bad.toml"
    conf.write_text(
        f"""
[defaults]
to = "file://{out}"
keep_daily = "a week"

[jobs.sql]
what = "pgsql"
consistency = "sometimes"
port = "five"

[jobs.files]
what = "data"
dir = "{tmp_path}"
exclude = 3
colour = "blue"
"""
    )
    r = tiffin(["run", "--config", str(conf)], tiffin_env(tmp_path / "home"), expect=2)
    lines = r.stderr.splitlines()
    assert lines[0] == f"tiffin: {conf} has 5 errors:"
    assert [line.strip() for line in lines[1:]] == [
        "defaults.keep_daily: expected a whole number",
        "jobs.sql.consistency: expected one of auto, single-transaction, lock",
        "jobs.sql.port: expected a whole number",
        "jobs.files.exclude: expected a string or a list of strings",
        "jobs.files.colour: unknown option",
    ]
    assert not out.exists()


def test_a_missing_config_file_is_exit_2(tmp_path):
    r = tiffin(["run"], tiffin_env(tmp_path / "home"), expect=2)
    assert f"there is no config file {tmp_path}/home/.config/tiffin/tiffin.toml" in r.stderr

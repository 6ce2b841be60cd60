"""A scheduled job keeps its --metrics-file, --pushgateway and --notify (SPEC §7), and their
secrets follow the rule of every scheduled secret: in the job's 0600 file, never on its line."""

from __future__ import annotations

import stat

from tests.e2e.crontab import Crontab
from tests.e2e.helpers import backups, tiffin
from tests.e2e.test_schedule import data_dir, run_like_cron
from tests.servers.ports import free_port

PUSH_SECRET = "Push-Pass-5521"
HOOK_TOKEN = "Hook-Token-8830"


def test_watching_options_survive_cron_and_their_secrets_stay_off_the_line(tmp_path):
    crontab = Crontab(tmp_path)
    src, out = data_dir(tmp_path / "data"), tmp_path / "b"
    prom = tmp_path / "metrics" / "tiffin.prom"
    prom.parent.mkdir()
    gateway = f"http://pusher:{PUSH_SECRET}@127.0.0.1:{free_port()}"
    hook = f"json://127.0.0.1:{free_port()}/{HOOK_TOKEN}"
    env = crontab.env(HOSTNAME="watched")
    args = ["schedule", "data", "local", str(out), "--dir", str(src), "--at", "4:00"]
    args += ["--metrics-file", str(prom), "--pushgateway", gateway, "--notify", hook]
    r = tiffin(args, env)
    text = crontab.text()
    for secret in (PUSH_SECRET, HOOK_TOKEN):
        assert secret not in text and secret not in r.stdout + r.stderr
    [(jid, _, command)] = crontab.jobs()
    assert f"--metrics-file {prom}" in command
    secrets = crontab.home / ".config" / "tiffin" / "secrets" / f"{jid}.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    lines = secrets.read_text().splitlines()
    assert f"TIFFIN_PUSHGATEWAY_URL={gateway}" in lines
    assert f"TIFFIN_NOTIFY={hook}" in lines

    run = run_like_cron(command, crontab.home)  # nothing listens there: two warnings, exit 0
    assert run.returncode == 0, run.stderr
    assert len(backups(out)) == 1
    warned = [x for x in run.stdout.splitlines() if x.startswith("WARNING: could not")]
    assert len(warned) == 2 and "push the metrics" in warned[0], run.stdout
    assert "send the report to json://127.0.0.1" in warned[1]
    assert PUSH_SECRET not in run.stdout + run.stderr
    assert 'tiffin_last_status{job="watched-data"' in prom.read_text()


def test_a_config_schedule_with_a_metrics_file_for_all_its_jobs(tmp_path):
    crontab = Crontab(tmp_path)
    src, out = data_dir(tmp_path / "data"), tmp_path / "b"
    prom = tmp_path / "all.prom"
    conf = tmp_path / "tiffin.toml"
    conf.write_text(f'[jobs.files]\nwhat = "data"\ndir = "{src}"\nto = "file://{out}"\n')
    env = crontab.env()
    tiffin(["schedule", "--config", str(conf), "--metrics-file", str(prom)], env)
    [(_, _, command)] = crontab.jobs()
    assert f"--metrics-file {prom}" in command
    run = run_like_cron(command, crontab.home)
    assert run.returncode == 0, run.stderr
    assert 'tiffin_last_status{job="files",target="file://' in prom.read_text()

"""schedule binlog --follow --systemd: a long-running user service, its secrets kept off its
line; --list shows it and unschedule removes it."""

from __future__ import annotations

import stat

from tests.e2e.crontab import Crontab
from tests.e2e.helpers import tiffin
from tests.readers import cron_entries
from tests.servers.env import tiffin_env

PASSWORD = "Binlog-S3cret-pw"


def test_follow_is_scheduled_as_a_service(tmp_path):
    home = tmp_path / "home"
    env = tiffin_env(home, TIFFIN_DB_PASSWORD=PASSWORD)
    args = ["schedule", "binlog", "local", str(tmp_path / "b"), "--host", "127.0.0.1"]
    done = tiffin([*args, "--port", "3307", "--follow", "--max-lag", "30", "--systemd"], env)
    units = home / ".config" / "systemd" / "user"
    [service] = units.glob("tiffin-*.service")
    text = service.read_text()
    assert "Type=simple" in text and "Restart=on-failure" in text
    assert '"binlog"' in text and '"--follow"' in text and '"--max-lag" "30"' in text
    assert PASSWORD not in text and PASSWORD not in done.stdout
    [secrets] = (home / ".config" / "tiffin" / "secrets").glob("*.env")
    assert PASSWORD in secrets.read_text()
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    listed = tiffin(["schedule", "--list"], env).stdout
    assert service.stem.removeprefix("tiffin-") in listed
    tiffin(["unschedule", "--all"], env)
    assert not list(units.glob("tiffin-*"))


def test_follow_needs_systemd(tmp_path):
    env = tiffin_env(tmp_path / "home")
    args = ["schedule", "binlog", "local", str(tmp_path / "b"), "--follow"]
    assert "--systemd" in tiffin(args, env, expect=2).stderr


def test_one_shot_goes_in_cron_every_15_minutes_and_keeps_a_time_given_later(tmp_path):
    crontab = Crontab(tmp_path)
    env = crontab.env(TIFFIN_DB_PASSWORD=PASSWORD)
    args = ["schedule", "binlog", "local", str(tmp_path / "b"), "--host", "127.0.0.1"]
    tiffin(args, env)
    [(when, _)] = cron_entries(crontab.file.read_bytes())
    assert when == b"*/15 * * * *" and PASSWORD not in crontab.text()
    tiffin([*args, "--cron", "*/5 * * * *"], env)
    tiffin(args, env)  # scheduled again without a time: it keeps the one it has
    [(when, _)] = cron_entries(crontab.file.read_bytes())
    assert when == b"*/5 * * * *"

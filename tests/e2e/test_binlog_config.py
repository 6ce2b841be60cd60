"""Binlog jobs of a config (what = "binlog") are scheduled, run and watched like its other
jobs: `schedule --config` puts a one-shot one in cron every 15 minutes and a follow one in a
systemd service (and says how, exit 2, when asked for cron), `status --config` shows each
one's newest archived log, window and verdict, and none is ever skipped silently."""

from __future__ import annotations

import json
import shlex
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.binlogs import binlog_server
from tests.e2e.crontab import Crontab
from tests.e2e.helpers import tiffin, tiffin_exe
from tests.readers import cron_entries, exec_start_argv, run_as_cron
from tests.servers.mariadb import MariaDB


@pytest.fixture
def server() -> Iterator[MariaDB]:
    s = binlog_server()
    try:
        s.sql(
            "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY) ENGINE=InnoDB;"
            "INSERT INTO shop.t VALUES (1);"
        )
        yield s
    finally:
        s.close()


def write_config(path: Path, server: MariaDB, out: Path, follow: bool = False) -> Path:
    path.write_text(
        "[defaults]\n"
        f'host = "127.0.0.1"\nport = {server.port}\nuser = "tiffin"\nlabel = "shop"\n'
        f'to = "file://{out}"\n'
        '[jobs.nightly]\nwhat = "mysql"\n'
        '[jobs.logs]\nwhat = "binlog"\n' + ("follow = true\nmax_lag = 2\n" if follow else "")
    )
    return path


def shell_words(command: bytes) -> list[str]:
    """Given a crontab line's command, return the words sh runs (its # tag a comment)."""
    return shlex.split(command.decode(), comments=True)


def run_words(name: str, conf: Path) -> list[str]:
    return [tiffin_exe(), "run", name, "--config", str(conf)]


def archived(out: Path) -> list[str]:
    return sorted(p.name[: -len(".json")] for p in (out / "shop.binlog").glob("*.json"))


def units_of(home: Path) -> Path:
    return home / ".config" / "systemd" / "user"


def secrets_of(home: Path, jid: str) -> Path:
    return home / ".config" / "tiffin" / "secrets" / f"{jid}.env"


def test_a_one_shot_binlog_job_is_put_in_cron_every_15_minutes_and_its_line_ships(server, tmp_path):
    crontab = Crontab(tmp_path)
    env = crontab.env(**server.client_env())
    out = tmp_path / "b"
    conf = write_config(tmp_path / "tiffin.toml", server, out)
    done = tiffin(["schedule", "--config", str(conf), "logs"], env)
    [(when, command)] = cron_entries(crontab.file.read_bytes())
    jid = crontab.jobs()[0][0]
    assert when == b"*/15 * * * *" and f"Scheduled tiffin job {jid}" in done.stdout
    secrets = secrets_of(crontab.home, jid)
    assert shell_words(command) == [*run_words("logs", conf), "--env-file", str(secrets)]
    assert server.password not in crontab.text() + done.stdout
    assert f"TIFFIN_DB_PASSWORD={server.password}" in secrets.read_text().splitlines()
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    ran = run_as_cron(command, crontab.home)  # cron's bare environment: no password in it
    assert ran.returncode == 0, ran.stderr
    assert b"Binlog archive completed" in ran.stdout and archived(out)
    # all of the config: the backup gets a time of day, the binlog job keeps its own
    tiffin(["schedule", "--config", str(conf)], env)
    times = {shell_words(cmd)[2]: t for t, cmd in cron_entries(crontab.file.read_bytes())}
    assert times["logs"] == b"*/15 * * * *" and times["nightly"].split()[2:] == [b"*"] * 3
    listed = tiffin(["schedule", "--list"], env).stdout
    assert listed.count(f"--config {conf}") == 2
    tiffin(["unschedule", "--all"], env)
    assert cron_entries(crontab.file.read_bytes()) == [] and not secrets.exists()


def test_a_follow_job_asked_for_in_cron_is_exit_2_saying_how(server, tmp_path):
    crontab = Crontab(tmp_path)
    env = crontab.env(**server.client_env())
    conf = write_config(tmp_path / "tiffin.toml", server, tmp_path / "b", follow=True)
    for extra in ([], ["logs"], ["nightly", "logs"]):
        refused = tiffin(["schedule", "--config", str(conf), *extra], env, expect=2)
        assert f"schedule --config {conf} logs --systemd" in refused.stderr
        assert len(refused.stderr.splitlines()) == 1 and "Traceback" not in refused.stderr
    at = tiffin(["schedule", "--config", str(conf), "--systemd", "--at", "4:00"], env, expect=2)
    assert "--at and --cron do not apply" in at.stderr
    assert crontab.calls() == [] and not (crontab.home / ".config").exists()
    ran = tiffin(["run", "--config", str(conf)], env, expect=2)  # it would never end
    assert f"tiffin run logs --config {conf}" in ran.stderr
    # the other job alone still goes to cron
    tiffin(["schedule", "--config", str(conf), "nightly"], env)
    [(_, command)] = cron_entries(crontab.file.read_bytes())
    secrets = secrets_of(crontab.home, crontab.jobs()[0][0])
    assert shell_words(command) == [*run_words("nightly", conf), "--env-file", str(secrets)]


def test_a_follow_job_is_a_service_whose_command_follows_the_server(server, tmp_path):
    home = tmp_path / "home"
    crontab = Crontab(tmp_path)
    env = crontab.env(**server.client_env())
    out = tmp_path / "b"
    conf = write_config(tmp_path / "tiffin.toml", server, out)
    tiffin(["schedule", "--config", str(conf)], env)  # first as a one-shot job, in cron
    assert len(cron_entries(crontab.file.read_bytes())) == 2
    conf = write_config(tmp_path / "tiffin.toml", server, out, follow=True)
    done = tiffin(["schedule", "--config", str(conf), "--systemd"], env)
    # moved to systemd, the jobs leave cron: the old line would ship beside the follower
    assert cron_entries(crontab.file.read_bytes()) == []
    assert done.stdout.count("its line in the crontab") == 2
    services = {
        p.read_text().split("ExecStart=")[1].split("\n")[0]: p
        for p in units_of(home).glob("tiffin-*.service")
    }
    argvs = {exec_start_argv(line)[2]: (exec_start_argv(line), p) for line, p in services.items()}
    assert sorted(argvs) == ["logs", "nightly"]
    argv, service = argvs["logs"]
    jid = service.stem.removeprefix("tiffin-")
    secrets = secrets_of(home, jid)
    assert argv == [tiffin_exe(), "run", "logs", "--config", str(conf), "--env-file", str(secrets)]
    text = service.read_text()
    assert "Type=simple" in text and "Restart=on-failure" in text and "KillSignal=SIGTERM" in text
    timer = service.with_suffix(".timer").read_text()
    assert "OnCalendar=*:0/5" in timer
    assert "Type=oneshot" in argvs["nightly"][1].read_text()
    assert f"enable --now tiffin-{jid}.service tiffin-{jid}.timer" in done.stdout
    assert server.password not in text + timer + done.stdout
    assert f"TIFFIN_DB_PASSWORD={server.password}" in secrets.read_text().splitlines()
    # its command, run as the service manager runs it (no password in its environment)
    follower = subprocess.Popen(
        argv,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        tiffin(["backup", "mysql", "local", str(out), *server.conn_args(), "--label", "shop"], env)
        server.sql("INSERT INTO shop.t VALUES (2)")
        holding = server.sql("SHOW MASTER STATUS").split("\t")[0]  # the log the row is in
        deadline = time.monotonic() + 60
        while holding not in archived(out):
            assert follower.poll() is None, follower.communicate()
            if time.monotonic() > deadline:  # say what the follower said meanwhile
                follower.send_signal(signal.SIGTERM)
                said = follower.communicate(timeout=120)
                pytest.fail(f"the follower never shipped {holding}: {said}")
            time.sleep(0.3)
    finally:
        follower.send_signal(signal.SIGTERM)
        stdout, stderr = follower.communicate(timeout=120)
    assert follower.returncode == 0, stderr
    assert "Binlog archive stopped" in stdout
    status = tiffin(["status", "--config", str(conf)], env)
    assert "2 jobs: 2 OK." in status.stdout
    server.sql("DROP DATABASE shop")
    tiffin(["restore", "local", str(out), "latest", "--into", "mysql", *server.conn_args()], env)
    assert server.sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM shop.t") == "1,2"
    tiffin(["unschedule", jid], env)
    assert not service.exists() and not secrets.exists()
    assert len(list(units_of(home).glob("tiffin-*.service"))) == 1


def test_status_shows_a_binlog_job_with_its_newest_log_and_window(server, tmp_path):
    crontab = Crontab(tmp_path)
    env = crontab.env(**server.client_env())
    out = tmp_path / "b"
    conf = write_config(tmp_path / "tiffin.toml", server, out)
    early = tiffin(["status", "--config", str(conf), "logs"], env, expect=1)
    assert "FAILED logs: it has archived no binary log" in early.stdout
    assert early.stderr == "tiffin: 1 of 1 jobs not OK: logs FAILED\n"
    tiffin(["run", "--config", str(conf)], env)  # the dump, then the logs
    server.sql("INSERT INTO shop.t VALUES (2)")
    tiffin(["run", "--config", str(conf), "logs"], env)
    newest = archived(out)[-1]
    shown = tiffin(["status", "--config", str(conf)], env)
    row = next(line for line in shown.stdout.splitlines() if line.startswith("logs "))
    assert row.split()[1:3] == ["OK", newest] and " to " in row
    assert "2 jobs: 2 OK." in shown.stdout and shown.stderr == ""
    [one] = json.loads(tiffin(["status", "--config", str(conf), "logs", "--json"], env).stdout)
    assert one["what"] == "binlog" and one["newest"] == newest and one["verdict"] == "OK"
    assert one["archive"]["first"] <= one["archive"]["last"]
    time.sleep(2.1)
    stale = tiffin(["status", "--config", str(conf), "logs", "--max-age", "1s"], env, expect=1)
    assert "STALE logs: its newest binary log was stored" in stale.stdout
    assert stale.stderr == "tiffin: 1 of 1 jobs not OK: logs STALE\n"
    tiffin(["run", "--config", str(conf), "logs"], env)
    missing = out / "shop.binlog" / f"{archived(out)[-2]}.json"  # between two others
    missing.unlink()
    gap = tiffin(["status", "--config", str(conf), "logs"], env, expect=1)
    assert f"FAILED logs: the archive lacks {missing.stem}" in gap.stdout

"""tiffin schedule / unschedule through a `crontab` command on PATH.

The stand-in `crontab` implements `-l` and `-` over a file of the test's own, as Debian's
does over /var/spool/cron (so root's real crontab is never touched); every call is logged.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.e2e.crontab import Crontab
from tests.e2e.helpers import backups, tiffin, tiffin_exe
from tests.servers.smtp import TEST_AUTH
from tiffin.commands import cron

USER_TAB = (
    "# m h  dom mon dow   command\n"
    "MAILTO=me@example.org\n"
    "PATH=/usr/local/bin:/usr/bin:/bin\n"
    "\n"
    "*/5 * * * * /usr/local/bin/poll >/dev/null 2>&1   # mine\n"
    'MAILTO=""\n'
    "@reboot   /usr/local/bin/warm-cache\n"
    "0 1 * * * echo 100\\% done"  # the last line has no line end
)


@pytest.fixture
def crontab(tmp_path) -> Crontab:
    return Crontab(tmp_path)


def data_dir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "menu.txt").write_text("ramen\n" * 1000)
    return root


def run_like_cron(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run a crontab command as cron does: sh -c, a bare environment, `\\%` unescaped."""
    return subprocess.run(
        [
            "env",
            "-i",
            f"HOME={home}",
            "PATH=/usr/bin:/bin",
            "sh",
            "-c",
            command.replace("\\%", "%"),
        ],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_at_writes_one_daily_line_with_the_absolute_tiffin(crontab, tmp_path):
    src, out = data_dir(tmp_path / "data"), tmp_path / "b"
    env = crontab.env(HOSTNAME="web-1")
    r = tiffin(["schedule", "data", "local", str(out), "--dir", str(src), "--at", "03:30"], env)
    [(jid, when, command)] = crontab.jobs()
    assert when == "30 3 * * *" and re.fullmatch(r"[0-9a-f]{8}", jid)
    assert command == f"{tiffin_exe()} backup data file://{out} --label web-1 --dir {src}"
    assert os.path.isabs(command.split()[0])
    assert f"Scheduled tiffin job {jid}" in r.stdout and f"# tiffin:{jid}" in r.stdout
    assert crontab.text() == (
        f'{cron.BEGIN}\nMAILTO=""\n30 3 * * * {command} # tiffin:{jid}\n{cron.END}\n'
    )
    assert crontab.calls() == ["-l", "-"]
    listing = tiffin(["schedule", "--list"], env).stdout.splitlines()
    assert listing[0].split() == ["JOB_ID", "WHEN", "COMMAND"]
    assert listing[1].split(None, 6) == [jid, "30", "3", "*", "*", "*", command]


def test_random_times_are_within_range_and_spread(crontab, tmp_path):
    conf = tmp_path / "tiffin.toml"
    conf.write_text(
        "".join(
            f'[jobs.j{i}]\nwhat = "data"\nto = "file://{tmp_path}/b"\npath = "j{i}"\n'
            for i in range(60)
        )
    )
    tiffin(["schedule", "--config", str(conf)], crontab.env())
    jobs = crontab.jobs()
    assert len(jobs) == 60
    times = set()
    for _jid, when, command in jobs:
        minute, hour, dom, month, dow = when.split()
        assert 0 <= int(minute) <= 59 and 0 <= int(hour) <= 23
        assert (dom, month, dow) == ("*", "*", "*")
        assert re.fullmatch(rf"{re.escape(tiffin_exe())} run j\d+ --config {conf}", command)
        times.add(when)
    assert len(times) > 20


def test_scheduling_the_same_job_again_replaces_its_line(crontab, tmp_path):
    crontab.file.write_text(USER_TAB + "\n")
    args = ["schedule", "data", "local", str(tmp_path / "b"), "--dir", str(tmp_path)]
    env = crontab.env(HOSTNAME="web-1")
    tiffin(args, env)
    first = crontab.text()
    tiffin(args, env)
    assert crontab.text() == first  # same job, same time: nothing moves
    tiffin([*args, "--at", "22:05", "--quiet"], env)
    [(_jid, when, command)] = crontab.jobs()
    assert when == "5 22 * * *" and command.endswith("--quiet")
    tiffin([*args, "--label", "other"], env)  # another label: another job
    assert len(crontab.jobs()) == 2
    assert crontab.text().count(cron.BEGIN) == 1 and crontab.text().count(cron.END) == 1


def test_unrelated_lines_are_kept_byte_for_byte(crontab, tmp_path):
    crontab.file.write_text(USER_TAB)
    env = crontab.env()
    tiffin(
        ["schedule", "data", "local", str(tmp_path / "b"), "--cron", "*/30 2-4 * * mon-fri"], env
    )
    text = crontab.text()
    assert text.startswith(USER_TAB + "\n" + cron.BEGIN + "\n")  # a line end added, no more
    assert text.endswith(cron.END + "\n")
    block = text[len(USER_TAB) + 1 :].splitlines()
    assert block[1] == 'MAILTO=""' and block[2].startswith("*/30 2-4 * * mon-fri ")
    tiffin(["unschedule", "--all"], env)
    assert crontab.text() == USER_TAB + "\n"


def test_unschedule_removes_only_the_named_job_then_the_block(crontab, tmp_path):
    crontab.file.write_text(USER_TAB + "\n")
    env = crontab.env()
    for name in ("one", "two"):
        tiffin(["schedule", "data", "local", str(tmp_path / name), "--dir", str(tmp_path)], env)
    (a, *_), (b, *_) = crontab.jobs()
    before = crontab.text()
    r = tiffin(["unschedule", "deadbeef"], env, expect=1)
    assert "no scheduled tiffin job deadbeef" in r.stderr and crontab.text() == before
    r = tiffin(["unschedule", a], env)
    assert f"Removed tiffin job {a}" in r.stdout
    assert [j[0] for j in crontab.jobs()] == [b]
    assert crontab.text().startswith(USER_TAB + "\n" + cron.BEGIN)
    tiffin(["unschedule", b], env)
    assert crontab.text() == USER_TAB + "\n"
    assert "No tiffin job is scheduled." in tiffin(["schedule", "--list"], env).stdout
    tiffin(["unschedule", "--all"], env)
    assert crontab.text() == USER_TAB + "\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--cron", "61 * * * *"],
        ["--cron", "* * * *"],
        ["--at", "25:00"],
        ["--at", "03:30", "--cron", "0 1 * * *"],
        ["--compress", "lz4"],
        ["--email", "not an address"],
        ["--ping-url", "ftp://hc.example/x"],
    ],
)
def test_a_bad_schedule_is_exit_2_before_the_crontab_is_touched(crontab, tmp_path, args):
    crontab.file.write_text(USER_TAB)
    r = tiffin(["schedule", "data", "local", str(tmp_path / "b"), *args], crontab.env(), expect=2)
    assert r.stderr.startswith("tiffin: ") and "Traceback" not in r.stderr
    assert crontab.calls() == [] and crontab.text() == USER_TAB
    assert not (crontab.home / ".config" / "tiffin").exists()


def test_no_secret_in_the_crontab_they_move_to_a_0600_file(crontab, tmp_path):
    smtp_url = "smtp+starttls://mailer:Smtp-Pass-6610@mail.example:587"
    env = crontab.env(
        TIFFIN_DB_PASSWORD="Db-Pass-4471",
        TIFFIN_SMTP_URL=smtp_url,
        HOSTNAME="ramen-sql-0",
    )
    r1 = tiffin(
        [
            "schedule",
            "pgsql",
            "ftp",
            "ramenbackups:Ftp-Pass-9083@ftp.example:2121",
            "nightly",
            "--host",
            "127.0.0.1",
            "--email",
            "cook@noodles.example",
        ],
        env,
    )
    r2 = tiffin(["schedule", "--list"], env)
    text = crontab.text()
    for secret in ("Db-Pass-4471", "Smtp-Pass-6610", "Ftp-Pass-9083"):
        assert secret not in text and secret not in r1.stdout + r1.stderr + r2.stdout
    [(jid, _, command)] = crontab.jobs()
    secrets = crontab.home / ".config" / "tiffin" / "secrets" / f"{jid}.env"
    assert f"--env-file {secrets}" in command
    assert "ftp://ramenbackups@ftp.example:2121/~/nightly" in command
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert stat.S_IMODE(secrets.parent.stat().st_mode) == 0o700
    lines = secrets.read_text().splitlines()
    assert "TIFFIN_FTP_PASSWORD=Ftp-Pass-9083" in lines
    assert "TIFFIN_DB_PASSWORD=Db-Pass-4471" in lines
    assert f"TIFFIN_SMTP_URL={smtp_url}" in lines
    tiffin(["unschedule", jid], env)
    assert not secrets.exists() and crontab.text() == ""


def test_the_line_run_with_crons_bare_environment_backs_up_and_mails(
    crontab, smtp_tls_server, certs, tmp_path
):
    user, password = TEST_AUTH
    src, out = data_dir(tmp_path / "data"), tmp_path / "b"
    to = f"cook-{uuid.uuid4().hex[:8]}@noodles.example"
    env = crontab.env(
        HOSTNAME="cron-host",
        TIFFIN_SMTP_URL=f"smtp+starttls://{user}:{password}@127.0.0.1:{smtp_tls_server.port}",
        SSL_CERT_FILE=str(certs.ca_file),
    )
    tiffin(
        ["schedule", "data", "local", str(out), "--dir", str(src), "--email", to, "--at", "4:00"],
        env,
    )
    assert password not in crontab.text()
    [(_, _, command)] = crontab.jobs()
    r = run_like_cron(command, crontab.home)
    assert r.returncode == 0, r.stderr
    [name] = backups(out)
    assert name.startswith("cron-host_") and f"Backup {name} completed." in r.stdout
    [mail] = [m for m in smtp_tls_server.wait_for(1) if to in str(m["To"])]
    assert mail["Subject"] == "Backup result for cron-host: OK"
    assert password not in mail.as_string()


def test_a_config_schedule_runs_its_job_under_cron(crontab, tmp_path):
    src, out = data_dir(tmp_path / "data"), tmp_path / "b"
    conf = tmp_path / "conf" / "tiffin.toml"
    conf.parent.mkdir()
    conf.write_text(
        f'[defaults]\nlabel = "conf-host"\nto = "file://{out}"\n\n'
        f'[jobs.files]\nwhat = "data"\ndir = "{src}"\n\n'
        f'[jobs.other]\nwhat = "data"\ndir = "{src}"\npath = "other"\n'
    )
    env = crontab.env()
    r = tiffin(["schedule", "--config", str(conf), "files"], env)
    [(jid, _, command)] = crontab.jobs()
    assert f"{jid}" in r.stdout and command.endswith(f"run files --config {conf}")
    run = run_like_cron(command, crontab.home)
    assert run.returncode == 0, run.stderr
    assert [n.split("_")[0] for n in backups(out)] == ["conf-host"]
    r = tiffin(["schedule", "--config", str(conf), "--email", "a@b.example"], env, expect=2)
    assert "put --email in the config file" in r.stderr


def test_systemd_writes_a_service_and_timer_and_leaves_the_crontab(crontab, tmp_path):
    env = crontab.env(HOSTNAME="sd-host", TIFFIN_DB_PASSWORD="Db-Pass-1234")
    r = tiffin(
        ["schedule", "mysql", "local", str(tmp_path / "b"), "--systemd", "--at", "4:15"], env
    )
    assert crontab.calls() == ["-l"]  # read for an old line of the job, and not written
    units = crontab.home / ".config" / "systemd" / "user"
    [timer] = units.glob("tiffin-*.timer")
    jid = timer.name[len("tiffin-") : -len(".timer")]
    service = (units / f"tiffin-{jid}.service").read_text()
    assert "OnCalendar=*-*-* 4:15:00" in timer.read_text()
    assert "RandomizedDelaySec=0" in timer.read_text()
    words = [tiffin_exe(), "backup", "mysql", f"file://{tmp_path}/b", "--label", "sd-host"]
    assert "ExecStart=" + " ".join(f'"{w}"' for w in words) in service
    assert "--env-file" in service and "Db-Pass-1234" not in service + timer.read_text()
    assert f"systemctl --user enable --now tiffin-{jid}.timer" in r.stdout
    tiffin(["schedule", "data", "local", str(tmp_path / "c"), "--systemd"], env)
    [other] = [t for t in units.glob("tiffin-*.timer") if t != timer]
    assert "OnCalendar=daily" in other.read_text()
    assert "RandomizedDelaySec=1d" in other.read_text()
    if shutil.which("systemd-analyze"):
        for unit in (timer, other):
            calendar = re.search(r"^OnCalendar=(.*)$", unit.read_text(), re.M).group(1)
            subprocess.run(
                ["systemd-analyze", "calendar", calendar], check=True, capture_output=True
            )
    listing = tiffin(["schedule", "--list"], env).stdout
    assert jid in listing and "systemd *-*-* 4:15:00" in listing
    tiffin(["unschedule", "--all"], env)
    assert list(units.glob("tiffin-*")) == []
    assert not (crontab.home / ".config" / "tiffin" / "secrets" / f"{jid}.env").exists()


def test_a_crontab_that_is_not_utf8_is_never_rewritten(crontab, tmp_path):
    original = b"# caf\xe9 (latin-1)\n0 1 * * * /usr/local/bin/mine\n"
    crontab.file.write_bytes(original)
    r = tiffin(["schedule", "data", "local", str(tmp_path / "b")], crontab.env(), expect=1)
    assert "not UTF-8" in r.stderr
    assert crontab.file.read_bytes() == original and crontab.calls() == ["-l"]


def test_a_job_moved_between_cron_and_systemd_lives_in_one_of_them(crontab, tmp_path):
    """Scheduling the same job again replaces it (SPEC §5), across schedulers too: else a job
    moved to systemd would also go on running from its old crontab line, twice a night."""
    crontab.file.write_text(USER_TAB + "\n")
    env = crontab.env(HOSTNAME="web-1")
    args = ["schedule", "data", "local", str(tmp_path / "b"), "--dir", str(tmp_path)]
    tiffin([*args, "--label", "kept"], env)  # another job, which stays in cron throughout
    [(kept, _, _)] = crontab.jobs()
    tiffin(args, env)
    [jid] = [j for j, _, _ in crontab.jobs() if j != kept]
    units = crontab.home / ".config" / "systemd" / "user"
    r = tiffin([*args, "--systemd"], env)
    assert [j for j, _, _ in crontab.jobs()] == [kept]
    assert crontab.text().startswith(USER_TAB + "\n")
    assert (units / f"tiffin-{jid}.timer").exists()
    assert f"its line in the crontab (job {jid}) is removed" in r.stdout
    listing = tiffin(["schedule", "--list"], env).stdout
    assert listing.count(jid) == 1 and "systemd daily" in listing
    r = tiffin(args, env)  # and back to cron
    assert sorted(j for j, _, _ in crontab.jobs()) == sorted([kept, jid])
    assert list(units.glob(f"tiffin-{jid}.*")) == []
    assert f"systemctl --user stop tiffin-{jid}.timer" in r.stdout
    assert tiffin(["schedule", "--list"], env).stdout.count(jid) == 1

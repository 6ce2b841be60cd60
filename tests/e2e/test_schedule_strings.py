"""`tiffin schedule` of hostile strings, read back and run the way cron runs the line.

The crontab is the stand-in of test_schedule.py (a file of the test's own); its text is read
as cron reads it and the command run by /bin/sh -c in cron's bare environment
(tests/readers.py)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.e2e.crontab import Crontab
from tests.e2e.helpers import backups, tiffin, tiffin_exe
from tests.faults.tried import tried
from tests.readers import argv_printer, cron_entries, printed_argv, run_as_cron
from tests.servers.ftp import FTPServer
from tiffin.job import TargetURL
from tiffin.targets.where import parse_url

# Folder names and patterns: any Unicode a file name can hold, rich in what readers split on.
SPECIAL = [
    "\u2028", "\x0c", "\x85", "\r", "\x0b", "%", "\\%", "\\", "'", '"', "$(id)", "`id`", "#",
    " # tiffin:deadbeef", "*", "-", " ", "é", "\U0001f35c",
]  # fmt: skip
CHARS = st.characters(blacklist_characters="\x00\n/", blacklist_categories=["Cs"])
NAME = (
    st.lists(st.sampled_from(SPECIAL) | st.text(CHARS, max_size=5), min_size=1, max_size=6)
    .map("".join)
    .filter(lambda t: t not in (".", "..") and len(t.encode()) < 120)
)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))


@tried(
    "hostile",
    "Scheduled --dir and --exclude of arbitrary Unicode",
    "hypothesis (12 examples; FUZZ_EXAMPLES=N) draws a folder name and an --exclude pattern "
    "(U+2028, \\x0c, \\x85, \\r, %, \\%, quotes, $( ), a leading '-'); `tiffin schedule` "
    "writes the line; it is read as cron reads it and run by /bin/sh -c in cron's bare "
    "environment, once with tiffin replaced by an argv printer, once for real",
    "the printed argv holds the folder and pattern exactly; the real run exits 0 and the "
    "backup is published; the crontab holds exactly one job line",
)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(folder=NAME, exclude=NAME)
@example(folder="\u2028", exclude="--")  # argparse before 3.12.3 dropped a glued "--"
def test_a_scheduled_line_runs_with_exactly_its_folder_and_pattern(
    folder: str, exclude: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("sched")
    tab = Crontab(root)
    src, out = root / "src" / folder, root / "out"
    src.mkdir(parents=True)
    (src / "menu.txt").write_text("ramen\n")
    env = tab.env(HOSTNAME="cron-host")
    args = [
        "schedule",
        "data",
        "local",
        str(out),
        "--dir",
        str(src),
        f"--exclude={exclude}",
    ]  # =: a pattern may start with "-"
    tiffin([*args, "--at", "3:00"], env)
    [(when, command)] = cron_entries(tab.file.read_bytes())
    assert when == b"0 3 * * *"
    exe = shlex.quote(tiffin_exe()).encode()
    assert command.startswith(exe + b" ")
    printer = shlex.quote(argv_printer(root)).encode()
    shown = run_as_cron(printer + command[len(exe) :], tab.home)
    argv = printed_argv(shown.stdout)
    assert argv[:2] == ["backup", "data"]
    assert parse_url(argv[2]) == TargetURL("local", path=str(out))
    assert argv[argv.index("--dir") + 1] == str(src)
    excludes = [a for a in argv if a.startswith("--exclude")]
    assert excludes in (["--exclude=" + exclude], ["--exclude"])
    if excludes == ["--exclude"]:
        assert argv[argv.index("--exclude") + 1] == exclude
    run = run_as_cron(command, tab.home)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    [name] = backups(out)
    assert name.startswith("cron-host_")


@tried(
    "hostile",
    "A scheduled job that cannot be kept",
    "`tiffin schedule` of an FTP password holding \\n or \\r (a secrets file line would end "
    "there), and of a --dir holding \\n (a crontab line would end there)",
    "exit 2, one `tiffin:` line without the password; the crontab is not written, no "
    "secrets file is made",
)
@pytest.mark.parametrize(
    "bad",
    ["a\nb", "a\rb"],
    ids=["newline-in-password", "cr-in-password"],
)
def test_what_cannot_be_kept_is_refused_before_anything_is_written(
    bad: str, tmp_path: Path
) -> None:
    tab = Crontab(tmp_path)
    r = tiffin(["schedule", "data", "ftp", f"u:{bad}@127.0.0.1:2121"], tab.env(), expect=2)
    assert bad not in r.stderr and r.stderr.startswith("tiffin: ")
    assert tab.calls() == [] and not (tab.home / ".config").exists()
    r = tiffin(
        ["schedule", "data", "local", str(tmp_path / "b"), "--dir", "/a\nb"], tab.env(), expect=2
    )
    assert tab.calls() == ["-l"] and not (tab.home / ".config").exists()


FTP_PASSWORD = "p@ss:w#rd/?%25&'\" \u2028\\x-é"


@pytest.fixture(scope="module")
def ftp6() -> Iterator[FTPServer]:
    server = FTPServer()
    server.host = "::1"
    server.password = FTP_PASSWORD
    with server:
        yield server


@tried(
    "hostile",
    "A scheduled IPv6 FTP job",
    "`tiffin schedule data ftp 'USER:PASSWORD@[::1]:PORT' nightly` with a password holding "
    "@ : # / ? % quotes U+2028 against pyftpdlib bound on ::1; the crontab line is read as "
    "cron reads it and run by /bin/sh -c in cron's bare environment",
    "the run exits 0 and the backup and its manifest arrive on the server; no password on "
    "the line or in any output; it sits in the 0600 secrets file",
)
def test_a_scheduled_ipv6_ftp_job_runs_under_cron(ftp6: FTPServer, tmp_path: Path) -> None:
    tab = Crontab(tmp_path)
    src = tmp_path / "data"
    src.mkdir()
    (src / "menu.txt").write_text("ramen\n" * 100)
    env = tab.env(HOSTNAME="v6-host")
    where = f"{ftp6.user}:{FTP_PASSWORD}@[::1]:{ftp6.port}"
    r = tiffin(["schedule", "data", "ftp", where, "nightly", "--dir", str(src)], env)
    text = tab.file.read_bytes()
    assert FTP_PASSWORD.encode() not in text and FTP_PASSWORD not in r.stdout + r.stderr
    [(_, command)] = cron_entries(text)
    assert f"ftp://{ftp6.user}@[::1]:{ftp6.port}/~/nightly".encode() in command
    run = run_as_cron(command, tab.home)
    output = (run.stdout + run.stderr).decode(errors="replace")
    assert run.returncode == 0, output
    assert FTP_PASSWORD not in output
    [name] = backups(ftp6.root / "nightly")
    assert name.startswith("v6-host_") and f"Backup {name} completed." in output

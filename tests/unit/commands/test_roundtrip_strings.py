"""Every string tiffin writes for a later reader reads back exactly (SPEC §5), through the
real reader: a crontab line through cron's rules and /bin/sh, an ExecStart= through
systemd's rules and `systemd-analyze verify`, the 0600 secrets file through the --env-file
reader its line names, a target through its redacted URL. Hypothesis draws the strings."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.faults.tried import tried
from tests.readers import (
    argv_printer,
    cron_command,
    cron_entries,
    exec_start_argv,
    printed_argv,
    run_as_cron,
)
from tiffin import config
from tiffin.commands import cron, schedule, units
from tiffin.errors import UsageError
from tiffin.job import TargetURL
from tiffin.targets.where import parse_target, parse_url

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# What readers split on or treat specially: line ends of every kind, cron's %, the shell's
# quotes and escapes, systemd's % $ and escapes, a fake job tag.
SPECIAL = [
    "\u2028", "\u2029", "\x0c", "\x85", "\x0b", "\x1c", "\x1d", "\x1e", "\r", "\t", " ",
    "%", "\\%", "\\\\%", "%%", "\\", "'", '"', "`", "$", "$(id)", "$$", "${HOME}", "#",
    " # tiffin:deadbeef", "*", "~", ";", "&", "|", "\\x41", "\\n", "%n", "%h", "\x7f", "\x01",
    "é", "\U0001f35c", "\ufeff",
]  # fmt: skip
CHARS = st.characters(blacklist_characters="\x00\n", blacklist_categories=["Cs"])
TEXT = st.lists(st.sampled_from(SPECIAL) | st.text(CHARS, max_size=6), max_size=8).map("".join)
ARGV = st.lists(TEXT, min_size=1, max_size=5)


@pytest.fixture(scope="module")
def printer(tmp_path_factory: pytest.TempPathFactory) -> str:
    return argv_printer(tmp_path_factory.mktemp("printer"))


# ---------------------------------------------------------------- crontab


@tried(
    "hostile",
    "Crontab lines of arbitrary Unicode",
    "hypothesis (200 examples; FUZZ_EXAMPLES=N) draws a job's arguments from any Unicode but "
    "NUL and \\n, rich in U+2028, \\x0c, \\x85, \\r, %, \\%, quotes, $( ), # tiffin:; the line "
    "goes into a crontab holding such user lines too, which is read back as cron reads it "
    "(lines at \\n only, five blank-separated fields, % rules) and run by /bin/sh -c in "
    "cron's environment with the command replaced by an argv printer",
    "the printed argv equals the intended one, nothing goes to stdin; the crontab has one "
    "line more and the user's lines are byte for byte; tiffin reads its job back",
)
@SETTINGS
@given(args=ARGV, user=st.lists(TEXT.map(lambda t: "# " + t), max_size=3))
def test_a_crontab_line_runs_exactly_its_arguments(
    args: list[str], user: list[str], printer: str, tmp_path: Path
) -> None:
    user_text = "".join(line + "\n" for line in user)
    line = cron.job_line("0 3 * * *", cron.command_text([printer, *args]), "a1b2c3d4")
    text = cron.render_crontab(cron.parse_crontab(user_text).with_job("a1b2c3d4", line))
    data = text.encode()
    assert data.startswith(user_text.encode())
    assert data.count(b"\n") == user_text.count("\n") + 4  # BEGIN, MAILTO, the job, END
    [(when, command)] = cron_entries(data)
    assert when == b"0 3 * * *"
    assert cron_command(command)[1] == b""  # no % left unescaped: nothing for stdin
    run = run_as_cron(command, tmp_path)
    assert run.returncode == 0, run.stderr
    assert printed_argv(run.stdout) == args
    [(jid, _, _)] = cron.parse_crontab(text).jobs()
    assert jid == "a1b2c3d4"


@tried(
    "hostile",
    "What no crontab line can hold",
    "an argument with a line break, a NUL, bytes that are not UTF-8, or a command over "
    "cron's 999 bytes (which cron would cut short)",
    "refused with exit 2 (UsageError) before anything is written",
)
@pytest.mark.parametrize(
    "arg",
    ["a\nb", "a\0b", "caf\udce9", "x" * 1000],
    ids=["newline", "nul", "not-utf8", "too-long"],
)
def test_what_cron_cannot_say_is_refused(arg: str) -> None:
    with pytest.raises(UsageError):
        cron.command_text(["/usr/bin/tiffin", arg])


# ---------------------------------------------------------------- systemd

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@tried(
    "hostile",
    "ExecStart= of arbitrary Unicode",
    "hypothesis (200 examples) draws arguments as for the crontab; the unit's ExecStart= "
    "is read back per systemd.syntax(7) (specifiers, quotes, C escapes, $$), and every "
    "tenth unit file is checked by `systemd-analyze verify`",
    "the argv read back equals the intended one; the unit file is ASCII, verify accepts "
    "it without a warning",
)
@SETTINGS
@given(args=ARGV, check=st.integers(0, 9))
def test_an_exec_start_line_reads_back_exactly(
    args: list[str], check: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    service, _ = units.unit_files("a1b2c3d4", ["/bin/true", *args], "0 3 * * *")
    service.encode("ascii")
    [value] = [ln[len("ExecStart=") :] for ln in service.split("\n") if ln.startswith("Exec")]
    assert exec_start_argv(value) == ["/bin/true", *args]
    if SYSTEMD_ANALYZE is None and os.environ.get("CI") == "true":
        pytest.fail("systemd-analyze is missing: the unit files are only parsed by the test")
    if check == 0 and SYSTEMD_ANALYZE is not None:
        unit = tmp_path_factory.mktemp("unit") / "tiffin-a1b2c3d4.service"
        unit.write_text(service)
        r = subprocess.run(
            [SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0 and "ExecStart" not in r.stderr, r.stderr


# ---------------------------------------------------------------- secrets file


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    saved = dict(os.environ)
    os.environ["HOME"] = str(tmp_path)
    try:
        yield tmp_path
    finally:
        os.environ.clear()
        os.environ.update(saved)


VALUE_CHARS = st.characters(blacklist_characters="\x00\n\r", blacklist_categories=["Cs"])
VALUE = st.lists(st.sampled_from(SPECIAL) | st.text(VALUE_CHARS, max_size=6), max_size=8).map(
    lambda parts: "".join(parts).replace("\r", "")
)


@tried(
    "secret",
    "Secrets files of arbitrary Unicode",
    "hypothesis (200 examples) draws the values of a job's secrets (any Unicode but NUL, "
    "\\n, \\r; leading and trailing blanks, =, #, quotes, U+2028, \\x85) and reads the 0600 "
    "file back with the --env-file reader that the scheduled line names",
    "every variable reads back equal; the file is 0600",
)
@SETTINGS
@given(values=st.lists(VALUE.filter(bool), min_size=1, max_size=3))
def test_a_secrets_file_reads_back_exactly(values: list[str], home: Path) -> None:
    names = ["TIFFIN_FTP_PASSWORD", "TIFFIN_DB_PASSWORD", "TIFFIN_SMTP_URL"]
    env = dict(zip(names, values, strict=False))
    path = schedule.write_secrets(schedule.Plan("a1b2c3d4", ("tiffin",), env))
    assert path is not None and os.stat(path).st_mode & 0o777 == 0o600
    for name in names:
        os.environ.pop(name, None)
    config.load_env_files([path])
    assert {n: os.environ[n] for n in env} == env


# ---------------------------------------------------------------- target URLs

USERINFO = st.lists(
    st.sampled_from(["@", ":", "#", "/", "?", "%", "%40", "[", "]", " ", "é", "\u2028"])
    | st.text(CHARS, min_size=1, max_size=5),
    min_size=1,
    max_size=6,
).map("".join)
HOSTS = st.sampled_from(
    ["ftp.example", "127.0.0.1", "::1", "2001:db8::7", "fe80::1", "xn--bcher-kva.example", "h"]
)
PATHS = st.lists(TEXT.filter(lambda t: t not in ("", ".", "..") and "/" not in t), max_size=3)


@tried(
    "hostile",
    "Target URLs of every form",
    "hypothesis (200 examples) draws ftp/ftps/sftp/s3/local targets with IPv4, IPv6 and "
    "IDNA hosts, ports, and a user, password and path holding @ : # / ? % [ ] and any "
    "Unicode; the target is written as tiffin writes it on a crontab line (redacted URL) "
    "and parsed back, and the WHERE form USER:PASSWORD@HOST:PORT is parsed too",
    "the URL parses back to the same target (without password); the WHERE form gives the "
    "same user, password, host and port",
)
@SETTINGS
@given(
    kind=st.sampled_from(["ftp", "ftps", "sftp", "s3", "local"]),
    user=USERINFO,
    password=USERINFO,
    host=HOSTS,
    port=st.none() | st.integers(1, 65535),
    segments=PATHS,
    absolute=st.booleans(),
)
def test_a_target_written_as_a_url_parses_back_to_itself(
    kind: str,
    user: str,
    password: str,
    host: str,
    port: int | None,
    segments: list[str],
    absolute: bool,
) -> None:
    path = ("/" if absolute or kind == "local" else "") + "/".join(segments)
    assume(not (path.startswith("/~/") or path == "/~"))  # a URL's /~/ means the home folder
    if kind == "local":
        target = TargetURL("local", path=os.path.normpath(path))
    elif kind == "s3":
        assume(":" not in host)
        target = TargetURL("s3", host=host, path=path.strip("/"))
    else:
        target = TargetURL(kind, host=host, port=port, user=user, path=path)
    assert parse_url(target.redacted()) == target
    if kind in ("ftp", "ftps") and ":" not in user:  # WHERE's user ends at its first ':'
        hostport = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
        where = parse_target(kind, f"{user}:{password}@{hostport}", path or None)
        assert (where.user, where.password, where.host, where.port) == (user, password, host, port)

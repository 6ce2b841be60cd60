"""Random passwords, in every form a target takes them, never reach an output or a resolver.

Each password holds two markers between runs of the characters that cut URLs (`@ : # / ? %`
and more), so a leak of any piece of it shows. tiffin runs in this process in the fuzz
sandbox (tests/fuzz/sandbox.py), which notes every name lookup and connection; the FTP and
SMTP servers are the suite's real ones on the loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.tried import tried
from tests.fuzz.sandbox import Sandbox
from tests.servers.ftp import FTPServer
from tests.servers.ports import free_port
from tests.servers.smtp import SMTPServer

CUTS = ["@", ":", "#", "/", "?", "%", "%40", "%2", "[", "]", " ", "\\", "'", '"', "~", "&", "="]
PIECE = st.lists(
    st.sampled_from(CUTS) | st.text(st.characters(blacklist_characters="\x00\n\r"), max_size=3),
    max_size=4,
).map("".join)
MARKERS = ("QZMARKone", "QZMARKtwo")
CLOSED = free_port()


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("pwforms")
    (root / "data").mkdir()
    (root / "data" / "f.txt").write_text("ramen\n")
    yield Sandbox(root, CLOSED)


def forms(user: str, password: str, host: str) -> list[list[str]]:
    """The ways a target can be given with PASSWORD: WHERE, a raw URL, an encoded URL."""
    enc = quote(password, safe="")
    return [
        ["ftp", f"{user}:{password}@{host}", "b"],
        [f"ftp://{user}:{password}@{host}/b"],
        [f"ftp://{user}:{enc}@{host}/b"],
        [f"ftps://{user}:{enc}@{host}/b"],
    ]


def leaks(text: str, password: str) -> list[str]:
    return [m for m in (*MARKERS, password) if m in text]


@tried(
    "secret",
    "Random passwords in WHERE and URLs",
    "hypothesis (10 examples x 4 forms x 3 places; FUZZ_EXAMPLES=N) draws passwords of two "
    "markers between runs of @ : # / ? % [ ] quotes and any Unicode, given as WHERE, a raw "
    "URL and a %-encoded URL (ftp and ftps) to `tiffin backup` and `tiffin list`, against "
    "the real FTP server (wrong password), a closed loopback port and a host beyond the "
    "loopback, with the report mailed to the real SMTP server",
    "runs: 240 (10 passwords x 4 forms x 3 places x 2 commands); pieces of a password "
    "shown: 0. Exit 1 or 2, never a traceback; no piece of the password in stdout, "
    "stderr, a mail or a name lookup; a bad URL is refused (exit 2) before any lookup",
)
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "10")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(a=PIECE, b=PIECE, c=PIECE)
def test_a_password_in_any_form_never_reaches_an_output(
    a: str, b: str, c: str, box: Sandbox, ftp_server: FTPServer, smtp_server: SMTPServer
) -> None:
    password = f"{a}{MARKERS[0]}{b}{MARKERS[1]}{c}"
    box.env["TIFFIN_SMTP_URL"] = f"smtp://127.0.0.1:{smtp_server.port}"
    to = f"pw-{uuid.uuid4().hex[:8]}@example.org"
    mailed = 0
    hosts = [f"127.0.0.1:{ftp_server.port}", f"127.0.0.1:{CLOSED}", "backup.example"]
    for host in hosts:
        for target in forms(ftp_server.user, password, host):
            for argv in (
                ["backup", "data", *target, "--dir", "data", "--email", to, "--timeout", "10"],
                ["list", *target, "--timeout", "10"],
            ):
                got = box.run(argv)
                shown = f"{argv!r}\nexit {got.code}\n{got.out}\n{got.err}\n{got.contacts}"
                assert got.code in (1, 2), shown
                assert "Traceback" not in got.err and "unexpected error" not in got.err, shown
                assert leaks(got.out + got.err, password) == [], shown
                assert leaks(" ".join(got.contacts), password) == [], shown
                if got.code == 2:
                    assert got.contacts == [], shown
                mailed += argv[0] == "backup" and got.code == 1
    if mailed:
        mails = [m for m in smtp_server.wait_for(mailed) if to in str(m["To"])]
        assert len(mails) == mailed
        for mail in mails:
            assert leaks(mail.as_string(), password) == [], mail.as_string()


HOSTILE = "p@ss:w#rd/?%&'\" \u2028x"


@pytest.fixture(scope="module")
def ftp_hostile() -> Iterator[FTPServer]:
    server = FTPServer()
    server.password = HOSTILE
    with server:
        yield server


@tried(
    "secret",
    "A hostile password that works",
    "pyftpdlib's password holds @ : # / ? % quotes and U+2028; `tiffin backup` with it in "
    "WHERE and %-encoded in a URL, the report mailed, then `tiffin list` and `verify`",
    "each run exits 0 and the backup is published; the password is in no output or mail",
)
@pytest.mark.parametrize("form", ["where", "url"])
def test_a_hostile_password_logs_in_and_stays_hidden(
    form: str, box: Sandbox, ftp_hostile: FTPServer, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    box.env["TIFFIN_SMTP_URL"] = f"smtp://127.0.0.1:{smtp_server.port}"
    to = f"ok-{uuid.uuid4().hex[:8]}@example.org"
    host = f"127.0.0.1:{ftp_hostile.port}"
    path = f"ok-{form}"
    if form == "where":
        target = ["ftp", f"{ftp_hostile.user}:{HOSTILE}@{host}", path]
    else:
        target = [f"ftp://{ftp_hostile.user}:{quote(HOSTILE, safe='')}@{host}/~/{path}"]
    for argv in (
        ["backup", "data", *target, "--dir", "data", "--email", to],
        ["list", *target],
        ["verify", *target, "latest"],
    ):
        got = box.run(argv)
        assert got.code == 0, f"{argv}\n{got.out}\n{got.err}"
        assert HOSTILE not in got.out + got.err
    [mail] = [m for m in smtp_server.wait_for(1) if to in str(m["To"])]
    assert HOSTILE not in mail.as_string()
    assert any(p.name.endswith(".manifest.json") for p in (ftp_hostile.root / path).iterdir())

"""The report: printed, mailed through a real SMTP server, pinged to a real HTTP server."""

from __future__ import annotations

import http.server
import os
import re
import socket
import threading
import time
import uuid

import pytest

from tests.e2e.helpers import backups, tiffin
from tests.servers.env import tiffin_env
from tests.servers.ports import free_port
from tests.servers.smtp import TEST_AUTH

SEED_LINE = re.compile(r"^Backup (\S+) completed\. Its \(compressed\) size is (\d+) bytes\.$")


def address() -> str:
    """A recipient of its own, so that a test finds its mail on a shared server."""
    return f"cook-{uuid.uuid4().hex[:10]}@noodles.example"


def mails_to(server, addr: str, n: int = 1, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while True:
        found = [
            (m, raw)
            for m, raw in zip(server.messages(), server.raw_messages(), strict=True)
            if addr in str(m["To"])
        ]
        if len(found) >= n or time.monotonic() > deadline:
            assert len(found) >= n, f"{len(found)} mail(s) to {addr}, expected {n}"
            return found


def no_mail_to(server, addr: str, wait: float = 1.0) -> None:
    time.sleep(wait)
    assert not [m for m in server.messages() if addr in str(m["To"])]


def make_dir(root, files: int = 20, size: int = 20_000):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"f{i:03}.bin").write_bytes(os.urandom(size))
    return root


@pytest.fixture
def smtp_env(smtp_server, tmp_path):
    return tiffin_env(
        tmp_path / "home",
        HOSTNAME="ramen-web-0",
        TIFFIN_SMTP_URL=f"smtp://127.0.0.1:{smtp_server.port}",
    )


def test_success_report_prints_seed_line_first_and_mails_it(smtp_server, smtp_env, tmp_path):
    src, out, to = make_dir(tmp_path / "data"), tmp_path / "b", address()
    r = tiffin(["backup", "data", "local", str(out), "--dir", str(src), "--email", to], smtp_env)
    lines = r.stdout.splitlines()
    [name] = backups(out)
    m = SEED_LINE.match(lines[0])
    assert m and m.group(1) == name
    size = (out / name).stat().st_size
    assert int(m.group(2)) == size
    assert f"Stored at: file://{out}/{name}" in lines
    assert any(line.startswith("Took: ") and "/s)" in line for line in lines)
    [(mail, _)] = mails_to(smtp_server, to)
    assert mail["Subject"] == "Backup result for ramen-web-0: OK"
    assert mail["From"] == "tiffin@ramen-web-0"
    body = mail.get_content()
    assert f"Backup {name} completed. Its (compressed) size is {size} bytes." in body
    assert f"Target: file://{out}" in body and "Duration: " in body
    assert r.stderr == ""


def test_two_addresses_and_mail_from_variable(smtp_server, smtp_env, tmp_path):
    src, a, b = make_dir(tmp_path / "data", 2), address(), address()
    env = {**smtp_env, "TIFFIN_MAIL_FROM": "backups@noodles.example"}
    tiffin(
        ["backup", "data", f"file://{tmp_path}/b", "--dir", str(src), "--email", a, "--email", b],
        env,
    )
    [(mail, _)] = mails_to(smtp_server, a)
    assert b in mail["To"] and mail["From"] == "backups@noodles.example"


def test_failure_mail_quotes_the_dump_tools_own_error(smtp_server, smtp_env, tmp_path):
    to, port = address(), free_port()
    env = {**smtp_env, "TIFFIN_DB_PASSWORD": "Pg-Secret-77"}
    out = tmp_path / "b"
    r = tiffin(
        [
            "backup",
            "pgsql",
            "local",
            str(out),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--user",
            "postgres",
            "--email",
            to,
        ],
        env,
        expect=1,
    )
    assert re.search(r"^Backup \S+\.sql\.gz FAILED: .*Connection refused", r.stderr, re.M)
    assert r.stdout == "" and backups(out) == []
    [(mail, raw)] = mails_to(smtp_server, to)
    assert mail["Subject"] == "Backup result for ramen-web-0: FAILED"
    body = mail.get_content()
    assert "FAILED" in body and f"port {port} failed: Connection refused" in body
    assert "Is the server running on that host" in body  # the tool's second line too
    assert b"Pg-Secret-77" not in raw


def test_failure_mail_for_a_missing_folder(smtp_server, smtp_env, tmp_path):
    to = address()
    r = tiffin(
        [
            "backup",
            "data",
            "local",
            str(tmp_path / "b"),
            "--dir",
            str(tmp_path / "gone"),
            "--email",
            to,
        ],
        smtp_env,
        expect=1,
    )
    assert "FAILED" in r.stderr and "does not exist" in r.stderr
    [(mail, _)] = mails_to(smtp_server, to)
    assert mail["Subject"].endswith(": FAILED")
    assert f"the directory {tmp_path / 'gone'} does not exist" in mail.get_content()


def test_starttls_with_login_verifies_the_certificate(smtp_tls_server, certs, tmp_path):
    user, password = TEST_AUTH
    to = address()
    url = f"smtp+starttls://{user}:{password}@127.0.0.1:{smtp_tls_server.port}"
    env = tiffin_env(tmp_path / "home", HOSTNAME="tls-host", TIFFIN_SMTP_URL=url)
    src = make_dir(tmp_path / "data", 2)
    args = ["backup", "data", "local", str(tmp_path / "b"), "--dir", str(src), "--email", to]
    # Without trusting the test CA the certificate is refused: noted, the backup still OK.
    r = tiffin(args, env)
    assert "could not send the report to " + to in r.stderr
    assert "certificate" in r.stderr and password not in r.stderr
    time.sleep(1.1)
    tiffin(args, {**env, "SSL_CERT_FILE": str(certs.ca_file)})
    [(mail, raw)] = mails_to(smtp_tls_server, to)
    [envelope] = [e for e in smtp_tls_server.envelopes() if to in e["rcpt_tos"]]
    assert envelope["tls"] and envelope["authenticated"]
    assert mail["Subject"] == "Backup result for tls-host: OK"
    assert password.encode() not in raw


def test_insecure_skips_the_certificate_check_only_when_asked(smtp_tls_server, tmp_path):
    user, password = TEST_AUTH
    to = address()
    url = f"smtp+starttls://{user}:{password}@127.0.0.1:{smtp_tls_server.port}"
    env = tiffin_env(tmp_path / "home", TIFFIN_SMTP_URL=url)
    src = make_dir(tmp_path / "data", 1)
    tiffin(
        [
            "backup",
            "data",
            "local",
            str(tmp_path / "b"),
            "--dir",
            str(src),
            "--email",
            to,
            "--insecure",
        ],
        env,
    )
    mails_to(smtp_tls_server, to)


def test_wrong_smtp_password_is_noted_without_the_password(smtp_tls_server, certs, tmp_path):
    to = address()
    url = f"smtp+starttls://tiffin:Wrong-Pass-42@127.0.0.1:{smtp_tls_server.port}"
    env = tiffin_env(tmp_path / "home", TIFFIN_SMTP_URL=url, SSL_CERT_FILE=str(certs.ca_file))
    src = make_dir(tmp_path / "data", 1)
    r = tiffin(
        ["backup", "data", "local", str(tmp_path / "b"), "--dir", str(src), "--email", to], env
    )
    assert "could not send the report" in r.stderr and "535" in r.stderr
    assert "Wrong-Pass-42" not in r.stderr + r.stdout
    assert r.stdout.startswith("Backup ")


def test_mail_server_down_changes_no_exit_status(tmp_path):
    # A port bound but not listening refuses connections, and no other server can take it.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    env = tiffin_env(tmp_path / "home", TIFFIN_SMTP_URL=f"smtp://127.0.0.1:{port}")
    src = make_dir(tmp_path / "data", 1)
    ok = tiffin(
        ["backup", "data", "local", str(tmp_path / "b"), "--dir", str(src), "--email", address()],
        env,
    )
    assert ok.stdout.startswith("Backup ") and "completed" in ok.stdout
    assert "could not send the report to cook-" in ok.stderr
    assert "connection refused" in ok.stderr
    bad = tiffin(
        [
            "backup",
            "data",
            "local",
            str(tmp_path / "b"),
            "--dir",
            str(tmp_path / "gone"),
            "--label",
            "other",  # not the same name as the first run's, were it in the same second
            "--email",
            address(),
        ],
        env,
        expect=1,
    )
    assert "could not send the report" in bad.stderr
    assert re.search(r"^Backup \S+ FAILED: the directory", bad.stderr, re.M)


def test_no_smtp_and_no_sendmail_is_a_clear_note(tmp_path):
    if any(os.path.exists(p) for p in ("/usr/sbin/sendmail", "/usr/lib/sendmail")):
        pytest.skip("this machine has a sendmail of its own")
    env = tiffin_env(tmp_path / "home")
    src = make_dir(tmp_path / "data", 1)
    r = tiffin(
        ["backup", "data", "local", str(tmp_path / "b"), "--dir", str(src), "--email", address()],
        env,
    )
    assert "TIFFIN_SMTP_URL is not set and there is no local sendmail" in r.stderr


def test_without_smtp_the_local_sendmail_gets_the_mail(tmp_path):
    bindir, spool = tmp_path / "bin", tmp_path / "spool"
    bindir.mkdir()
    sendmail = bindir / "sendmail"
    sendmail.write_text(f'#!/bin/sh\necho "$@" > {spool}.args\ncat > {spool}\n')
    sendmail.chmod(0o755)
    env = tiffin_env(tmp_path / "home", HOSTNAME="mta-host")
    env["PATH"] = f"{bindir}:{env['PATH']}"
    to = address()
    src = make_dir(tmp_path / "data", 1)
    tiffin(["backup", "data", "local", str(tmp_path / "b"), "--dir", str(src), "--email", to], env)
    assert (tmp_path / "spool.args").read_text().split() == ["-t", "-oi"]
    text = spool.read_text()
    assert f"To: {to}" in text and "Subject: Backup result for mta-host: OK" in text


@pytest.mark.parametrize("bad", ["http://[::1", "ftp://mail.example", "mail.example:25"])
def test_malformed_smtp_url_is_exit_2_before_anything(tmp_path, bad):
    env = tiffin_env(tmp_path / "home", TIFFIN_SMTP_URL=bad)
    out = tmp_path / "b"
    r = tiffin(
        ["backup", "data", "local", str(out), "--dir", str(tmp_path), "--email", "a@b.example"],
        env,
        expect=2,
    )
    assert "TIFFIN_SMTP_URL" in r.stderr and not out.exists()


def test_no_password_in_any_mail(smtp_tls_server, certs, ftp_server, tmp_path):
    ftp = ftp_server
    if True:
        user, smtp_password = TEST_AUTH
        env = tiffin_env(
            tmp_path / "home",
            HOSTNAME="secret-host",
            TIFFIN_SMTP_URL=f"smtp+starttls://{user}:{smtp_password}@127.0.0.1:{smtp_tls_server.port}",
            SSL_CERT_FILE=str(certs.ca_file),
            TIFFIN_DB_PASSWORD="Db-Pass-9137",
            TIFFIN_FTP_PASSWORD="Env-Ftp-8264",
        )
        src = make_dir(tmp_path / "data", 2)
        where = f"{ftp.user}:{ftp.password}@127.0.0.1:{ftp.port}"
        ok, bad = address(), address()
        tiffin(["backup", "data", "ftp", where, "nightly", "--dir", str(src), "--email", ok], env)
        wrong = f"{ftp.user}:Wrong-Ftp-5521@127.0.0.1:{ftp.port}"
        tiffin(["backup", "data", "ftp", wrong, "--dir", str(src), "--email", bad], env, expect=1)
        mails = mails_to(smtp_tls_server, ok) + mails_to(smtp_tls_server, bad)
    assert mails[0][0]["Subject"].endswith(": OK") and mails[1][0]["Subject"].endswith(": FAILED")
    assert f"ftp://{ftp.user}@127.0.0.1:{ftp.port}/~/nightly" in mails[0][0].get_content()
    for _, raw in mails:
        for secret in (
            ftp.password,
            smtp_password,
            "Db-Pass-9137",
            "Env-Ftp-8264",
            "Wrong-Ftp-5521",
        ):
            assert secret.encode() not in raw


# ---------------------------------------------------------------- shrink warning


def test_shrink_warning_after_most_rows_were_deleted(postgres, smtp_server, tmp_path):
    db = f"shrink_{uuid.uuid4().hex[:6]}"
    postgres.sql(f'CREATE DATABASE "{db}"')
    postgres.sql(
        "CREATE TABLE orders (id int PRIMARY KEY, note text);"
        "INSERT INTO orders SELECT i, md5(i::text) || md5((i * 7)::text) "
        "FROM generate_series(1, 20000) i;",
        db,
    )
    to = address()
    env = tiffin_env(
        tmp_path / "home",
        **postgres.client_env(),
        HOSTNAME="ramen-sql-0",
        TIFFIN_SMTP_URL=f"smtp://127.0.0.1:{smtp_server.port}",
    )
    out = tmp_path / "b"
    args = ["backup", "pgsql", "local", str(out), *postgres.conn_args(), "--database", db]
    first = tiffin([*args, "--email", to], env)
    assert "WARNING" not in first.stdout
    postgres.sql("DELETE FROM orders WHERE id > 1000", db)
    time.sleep(1.1)  # names are stamped to the second
    second = tiffin([*args, "--email", to], env)
    sizes = [(out / n).stat().st_size for n in backups(out)]
    assert sizes[1] < sizes[0] * 0.5
    [warning] = [line for line in second.stdout.splitlines() if line.startswith("WARNING:")]
    assert f"({sizes[1]} bytes)" in warning and f"({sizes[0]} bytes)" in warning
    assert second.stdout.splitlines()[0].startswith(f"Backup {backups(out)[1]} completed.")
    mails = mails_to(smtp_server, to, 2)
    assert [m["Subject"] for m, _ in mails] == [
        "Backup result for ramen-sql-0: OK",
        "Backup result for ramen-sql-0: WARNING",
    ]
    assert "WARNING: this backup" in mails[1][0].get_content()
    # a lower --min-ratio accepts the same shrink
    postgres.sql("DELETE FROM orders WHERE id > 900", db)
    time.sleep(1.1)
    third = tiffin([*args, "--min-ratio", "0.05"], env)
    assert "WARNING" not in third.stdout
    postgres.sql(f'DROP DATABASE "{db}"')


# ---------------------------------------------------------------- pings


class PingServer:
    """A local HTTP server that records the path of every GET, in order."""

    def __init__(self, status: int = 200) -> None:
        self.paths: list[str] = []
        seen = self.paths

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ping/3f1c"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pings():
    server = PingServer()
    yield server
    server.close()


def backup_data(tmp_path, src, *extra, expect=0):
    """Run `tiffin backup data local TMP/b --dir SRC EXTRA...` in a clean environment."""
    args = ["backup", "data", "local", str(tmp_path / "b"), "--dir", str(src), *extra]
    return tiffin(args, tiffin_env(tmp_path / "home"), expect=expect)


def test_pings_start_then_success_in_order(pings, tmp_path):
    r = backup_data(tmp_path, make_dir(tmp_path / "data", 1), "--ping-url", pings.url)
    assert pings.paths == ["/ping/3f1c/start", "/ping/3f1c"] and r.stderr == ""


def test_pings_start_then_fail_in_order(pings, tmp_path):
    backup_data(tmp_path, tmp_path / "gone", "--ping-url", pings.url + "/", expect=1)
    assert pings.paths == ["/ping/3f1c/start", "/ping/3f1c/fail"]


def test_a_dead_ping_url_does_not_fail_the_backup(tmp_path):
    # A port bound but not listening refuses connections, and no other server can take it.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{holder.getsockname()[1]}/hc"
    r = backup_data(tmp_path, make_dir(tmp_path / "data", 1), "--ping-url", url)
    holder.close()
    assert len(backups(tmp_path / "b")) == 1
    assert "could not send the start ping" in r.stderr
    assert "could not send the success ping" in r.stderr


def test_a_ping_answered_with_an_error_is_noted(tmp_path):
    server = PingServer(status=404)
    try:
        r = backup_data(tmp_path, make_dir(tmp_path / "data", 1), "--ping-url", server.url)
    finally:
        server.close()
    assert "404" in r.stderr and server.paths == ["/ping/3f1c/start", "/ping/3f1c"]


def test_a_ping_url_that_is_not_http_is_exit_2(tmp_path):
    r = tiffin(
        ["backup", "data", "local", str(tmp_path / "b"), "--ping-url", "file:///etc/passwd"],
        tiffin_env(tmp_path / "home"),
        expect=2,
    )
    assert "--ping-url" in r.stderr

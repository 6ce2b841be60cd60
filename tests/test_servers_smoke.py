"""Each test server works with a real, independent client."""

from __future__ import annotations

import ftplib
import io
import os
import smtplib
import ssl
import subprocess
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import paramiko
import pytest

from tests.servers.ftp import FTPServer
from tests.servers.mariadb import MariaDB
from tests.servers.postgres import Postgres
from tests.servers.s3 import S3Server
from tests.servers.smtp import TEST_AUTH, SMTPServer
from tests.servers.sshd import SSHServer


def _run(argv: list[str], env: dict[str, str], sql: str) -> str:
    proc = subprocess.run(
        argv, input=sql, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_mariadb_tcp_login_as_tiffin(mariadb: MariaDB, clean_env: dict[str, str]) -> None:
    mariadb.sql("CREATE DATABASE IF NOT EXISTS smoke")
    env = clean_env | {"MYSQL_PWD": mariadb.password}
    out = _run(
        [*mariadb.tcp_client_argv("smoke"), "-N", "-B"],
        env,
        "DROP TABLE IF EXISTS t; CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20));"
        "INSERT INTO t VALUES (1, 'über'), (2, 'naïve'); SELECT name FROM t ORDER BY id;",
    )
    assert out.splitlines() == ["über", "naïve"]
    assert mariadb.sql("SELECT COUNT(*) FROM t", database="smoke") == "2"
    expected = ["--host", "127.0.0.1", "--port", str(mariadb.port), "--user", "tiffin"]
    assert mariadb.conn_args() == expected


def test_postgres_tcp_login_with_password(postgres: Postgres, clean_env: dict[str, str]) -> None:
    postgres.sql("DROP DATABASE IF EXISTS smoke; CREATE DATABASE smoke;")
    env = clean_env | {"PGPASSWORD": postgres.password}
    argv = [postgres.bin("psql"), "-X", "-w", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    argv += ["-h", postgres.host, "-p", str(postgres.port), "-U", postgres.user, "-d", "smoke"]
    sql = (
        "CREATE TABLE t (id int, name text); INSERT INTO t VALUES (1, 'über'); SELECT name FROM t;"
    )
    assert _run(argv, env, sql).strip() == "über"
    assert postgres.sql("SELECT count(*) FROM t", database="smoke") == "1"
    bad = subprocess.run(
        argv,
        input="SELECT 1",
        env=clean_env | {"PGPASSWORD": "wrong"},
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0  # scram-sha-256 over TCP really checks the password


def test_sshd_sftp_put_get(sshd: SSHServer, tmp_path: Path) -> None:
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    scanned = subprocess.run(
        ["ssh-keyscan", "-t", "ed25519", "-p", str(sshd.port), sshd.host],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert sshd.known_hosts_line() in scanned.splitlines()

    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        sshd.host,
        port=sshd.port,
        username=sshd.user,
        key_filename=str(sshd.client_key),
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    try:
        data = os.urandom(300_000)
        (tmp_path / "up.bin").write_bytes(data)
        with client.open_sftp() as sftp:
            sftp.put(str(tmp_path / "up.bin"), "smoke.bin")
            sftp.get("smoke.bin", str(tmp_path / "down.bin"))
            sftp.remove("smoke.bin")
        assert (tmp_path / "down.bin").read_bytes() == data
        _, stdout, _ = client.exec_command("pwd")
        assert stdout.read().decode().strip() == str(sshd.home)
    finally:
        client.close()


def _ftp_roundtrip(ftp: ftplib.FTP) -> None:
    data = os.urandom(2_000_000)
    ftp.storbinary("STOR smoke.bin", io.BytesIO(data))
    ftp.voidcmd("TYPE I")
    assert ftp.size("smoke.bin") == len(data)
    out = io.BytesIO()
    ftp.retrbinary("RETR smoke.bin", out.write)
    assert out.getvalue() == data
    ftp.delete("smoke.bin")
    ftp.quit()


def test_ftp_store_retrieve(ftp_server: FTPServer) -> None:
    ftp = ftplib.FTP()
    ftp.connect(ftp_server.host, ftp_server.port, timeout=10)
    ftp.login(ftp_server.user, ftp_server.password)
    _ftp_roundtrip(ftp)


def test_ftps_store_retrieve(ftps_server: FTPServer) -> None:
    assert ftps_server.ca_file is not None
    context = ssl.create_default_context(cafile=str(ftps_server.ca_file))
    ftp = ftplib.FTP_TLS(context=context)
    ftp.connect(ftps_server.host, ftps_server.port, timeout=10)
    ftp.login(ftps_server.user, ftps_server.password)  # sends AUTH TLS first
    ftp.prot_p()
    _ftp_roundtrip(ftp)


def test_s3_put_get(s3_server: S3Server) -> None:
    client = s3_server.client()
    bucket = s3_server.make_bucket("smoke-bucket")
    client.put_object(Bucket=bucket, Key="dir/obj.bin", Body=b"payload")
    assert client.get_object(Bucket=bucket, Key="dir/obj.bin")["Body"].read() == b"payload"
    env = s3_server.env()
    assert env["AWS_ENDPOINT_URL"] == s3_server.endpoint
    s3_server.reset()
    assert client.list_buckets()["Buckets"] == []


def _mail(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "tiffin@example.test"
    msg["To"] = "ops@example.test"
    msg["Subject"] = subject
    msg.set_content("backup finished\n")
    return msg


def test_smtp_plain(smtp_server: SMTPServer) -> None:
    smtp_server.clear()
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.sendmail(
            "tiffin@example.test", ["ops@example.test"], _mail("plain").as_bytes(policy=SMTP)
        )
    (msg,) = smtp_server.wait_for(1)
    assert msg["Subject"] == "plain"
    assert msg.get_content() == "backup finished\n"
    assert smtp_server.envelopes()[0]["rcpt_tos"] == ["ops@example.test"]


def test_smtp_starttls_login(smtp_tls_server: SMTPServer) -> None:
    smtp_tls_server.clear()
    assert smtp_tls_server.ca_file is not None
    context = ssl.create_default_context(cafile=str(smtp_tls_server.ca_file))
    with smtplib.SMTP(smtp_tls_server.host, smtp_tls_server.port, timeout=10) as client:
        client.starttls(context=context)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(TEST_AUTH[0], "wrong")
        client.login(*TEST_AUTH)
        client.send_message(_mail("tls"))
    (msg,) = smtp_tls_server.wait_for(1)
    assert msg["Subject"] == "tls"
    assert smtp_tls_server.envelopes()[0]["tls"] is True

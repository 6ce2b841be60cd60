"""Every way a password reaches tiffin, watched: never on a command line (/proc/*/cmdline
polled all through the run), never in stdout or stderr (with or without --debug), never in
a manifest, a stored backup, a mail or a file tiffin writes under HOME; and backups in a
folder are readable by their owner only unless --mode says otherwise."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.helpers import backups, tiffin, tiffin_exe
from tests.faults.tried import tried
from tests.servers.env import tiffin_env
from tests.servers.ftp import FTPServer
from tests.servers.smtp import TEST_AUTH

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class Watch:
    """Reads every /proc/*/cmdline every 2 ms or so while a run goes on, and keeps each
    one that holds SECRET. The suite's own servers are not watched: they are given their
    passwords on their command lines (tests/servers/*_main.py)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.seen: list[tuple[int, list[str]]] = []  # (parent pid, argv)
        self.scans = 0
        self.tiffins = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == os.getpid():
                    continue
                try:
                    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if self.secret in raw and b"/tests/servers/" not in raw:
                        stat = Path(f"/proc/{pid}/stat").read_text()
                        ppid = int(stat.rsplit(")", 1)[1].split()[1])
                        self.seen.append((ppid, raw.decode(errors="replace").split("\0")))
                except OSError:
                    continue
                self.tiffins += b"bin/tiffin\0" in raw
            self.scans += 1

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Case:
    """A backup (and, for a database, its restore) that hands tiffin SECRET one way."""

    secret: str
    args: list[str]
    env: dict[str, str]
    stores: list[Path] = field(default_factory=list)  # folders to search on this machine
    restore: list[str] = field(default_factory=list)
    s3: S3Client | None = None
    bucket: str = ""
    mailer: str = "smtp_server"  # the fixture of the SMTP server the report goes to
    on_argv: bool = False  # the user gave it on tiffin's own command line


def _data(tmp: Path) -> list[str]:
    d = tmp / "data"
    d.mkdir(exist_ok=True)
    (d / "f.txt").write_text("nothing secret here\n")
    return ["--dir", str(d)]


def _private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def ftp_case(how: str) -> Callable[[pytest.FixtureRequest, Path, dict[str, str]], Case]:
    def make(request: pytest.FixtureRequest, tmp: Path, env: dict[str, str]) -> Case:
        srv = FTPServer()  # a password of its own: other tests give theirs on command lines
        srv.password = f"Ftp-{uuid.uuid4().hex[:12]}"
        request.addfinalizer(srv.close)
        srv.start()
        folder = f"sec-{uuid.uuid4().hex[:8]}"
        hp = f"{srv.host}:{srv.port}"
        target = ["ftp", f"{srv.user}@{hp}", folder]
        if how == "WHERE":
            target = ["ftp", f"{srv.user}:{srv.password}@{hp}", folder]
        elif how == "URL":
            target = [f"ftp://{srv.user}:{srv.password}@{hp}/~/{folder}"]
        elif how == "TIFFIN_FTP_PASSWORD":
            env[how] = srv.password
        else:
            _private(
                Path(env["HOME"], ".netrc"),
                f"machine {srv.host} login {srv.user} password {srv.password}\n",
            )
        args = ["data", *target, *_data(tmp)]
        return Case(srv.password, args, env, [srv.root / folder], on_argv=how in ("WHERE", "URL"))

    return make


def db_case(what: str, how: str) -> Callable[[pytest.FixtureRequest, Path, dict[str, str]], Case]:
    def make(request: pytest.FixtureRequest, tmp: Path, env: dict[str, str]) -> Case:
        srv = request.getfixturevalue("mariadb" if what == "mysql" else "postgres")
        db = f"sec_{uuid.uuid4().hex[:6]}"
        if what == "mysql":
            srv.sql(
                f"CREATE DATABASE {db}; CREATE TABLE {db}.t (i INT); INSERT INTO {db}.t VALUES (1);"
            )
        else:
            srv.sql(f'CREATE DATABASE "{db}"')
            srv.sql("CREATE TABLE t AS SELECT 1 AS i", db)
        conn = srv.conn_args()
        home = Path(env["HOME"])
        if how == "TIFFIN_DB_PASSWORD":
            env[how] = srv.password
        elif how == "--password-file":
            _private(tmp / "pw", srv.password + "\n")
            conn += ["--password-file", str(tmp / "pw")]
        elif how == "~/.my.cnf":
            _private(home / ".my.cnf", f"[client]\npassword={srv.password}\n")
        else:
            _private(home / ".pgpass", f"127.0.0.1:{srv.port}:*:{srv.user}:{srv.password}\n")
        out = tmp / "b"
        args = [what, "local", str(out), *conn, "--database", db]
        restore = ["local", str(out), "latest", "--into", what, *conn, "--database", db + "_r"]
        return Case(srv.password, args, env, [out], restore)

    return make


def s3_case(how: str) -> Callable[[pytest.FixtureRequest, Path, dict[str, str]], Case]:
    def make(request: pytest.FixtureRequest, tmp: Path, env: dict[str, str]) -> Case:
        srv = request.getfixturevalue("s3_server")
        bucket = srv.make_bucket(f"sec-{uuid.uuid4().hex[:10]}")
        secret = f"S3-Secret-{uuid.uuid4().hex[:12]}"  # moto takes any key
        if how == "AWS_SECRET_ACCESS_KEY":
            env.update(srv.env(), AWS_SECRET_ACCESS_KEY=secret)
        else:
            _private(
                Path(env["HOME"], ".s3cfg"),
                f"[default]\naccess_key = s3cfg-key\n"
                f"secret_key = {secret}\nhost_base = {srv.host}:{srv.port}\n"
                "use_https = False\n",
            )
        return Case(
            secret,
            ["data", "s3", bucket, "sec", *_data(tmp)],
            env,
            [],
            s3=srv.client(),
            bucket=bucket,
        )

    return make


def smtp_case(request: pytest.FixtureRequest, tmp: Path, env: dict[str, str]) -> Case:
    srv = request.getfixturevalue("smtp_tls_server")
    user, password = TEST_AUTH
    env["TIFFIN_SMTP_URL"] = f"smtp+starttls://{user}:{password}@127.0.0.1:{srv.port}"
    env["SSL_CERT_FILE"] = str(srv.ca_file)
    out = tmp / "b"
    to = f"sec-{uuid.uuid4().hex[:8]}@example.org"
    args = ["data", "local", str(out), *_data(tmp), "--email", to]
    return Case(password, args, env, [out], mailer="smtp_tls_server")


WAYS: dict[str, Callable[[pytest.FixtureRequest, Path, dict[str, str]], Case]] = {
    "FTP password in WHERE": ftp_case("WHERE"),
    "FTP password in a URL": ftp_case("URL"),
    "TIFFIN_FTP_PASSWORD": ftp_case("TIFFIN_FTP_PASSWORD"),
    "~/.netrc": ftp_case("netrc"),
    "TIFFIN_DB_PASSWORD (mysql)": db_case("mysql", "TIFFIN_DB_PASSWORD"),
    "TIFFIN_DB_PASSWORD (pgsql)": db_case("pgsql", "TIFFIN_DB_PASSWORD"),
    "--password-file (mysql)": db_case("mysql", "--password-file"),
    "--password-file (pgsql)": db_case("pgsql", "--password-file"),
    "~/.my.cnf": db_case("mysql", "~/.my.cnf"),
    "~/.pgpass": db_case("pgsql", "~/.pgpass"),
    "AWS_SECRET_ACCESS_KEY": s3_case("AWS_SECRET_ACCESS_KEY"),
    "~/.s3cfg secret_key": s3_case("s3cfg"),
    "TIFFIN_SMTP_URL": smtp_case,
}


def files_under(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


@tried(
    "secret",
    "A password, wherever it is given",
    "each run (a backup, and for a database its restore, with and without `--debug`, the "
    "report mailed) is watched by a thread reading every /proc/*/cmdline in a loop",
    "the password is on no command line (given in WHERE or a URL, it is on tiffin's own, "
    "where the user put it, and on no child's), in no stdout or stderr line, in no stored "
    "file (manifest, backup, S3 object), in no mail; no file tiffin writes under HOME holds it",
)
@pytest.mark.parametrize("way", list(WAYS))
def test_a_password_never_leaks(way: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    env = tiffin_env(tmp_path / "home", HOSTNAME="secrets-host")
    case = WAYS[way](request, tmp_path, env)
    mailer = request.getfixturevalue(case.mailer)
    if "TIFFIN_SMTP_URL" not in case.env:
        case.env["TIFFIN_SMTP_URL"] = f"smtp://127.0.0.1:{mailer.port}"
        case.args += ["--email", f"sec-{uuid.uuid4().hex[:8]}@example.org"]
    to = case.args[case.args.index("--email") + 1]
    home = Path(case.env["HOME"])
    before = files_under(home)
    secret = case.secret
    outputs: list[str] = []
    runs = [["backup", *case.args, "--label", "plain"], ["backup", *case.args, "--label", "debug"]]
    runs[1].append("--debug")
    runs += [["restore", *case.restore, "--debug"]] if case.restore else []
    with Watch(secret) as poll:
        for argv in runs:
            r = tiffin(argv, case.env)
            outputs += [r.stdout, r.stderr]
    # Where the user put it (tiffin's own command line, run by this test) it is seen; it
    # must never be seen anywhere else: in a child of tiffin, or in a run without it.
    elsewhere = [
        argv
        for ppid, argv in poll.seen
        if not (case.on_argv and ppid == os.getpid() and argv[1:2] == [tiffin_exe()])
    ]
    assert elsewhere == [], elsewhere
    assert poll.scans > 20 and poll.tiffins > 0, (poll.scans, poll.tiffins)
    for text in outputs:
        assert secret not in text, text
    assert any("Backup " in t and "completed" in t for t in outputs)
    for folder in case.stores:
        stored = files_under(folder)
        assert any(p.name.endswith(".manifest.json") for p in stored), stored
        for path, data in stored.items():
            assert secret.encode() not in data, path
    if case.s3 is not None:
        objects = case.s3.list_objects_v2(Bucket=case.bucket).get("Contents", [])
        assert len(objects) == 4
        for obj in objects:
            body = case.s3.get_object(Bucket=case.bucket, Key=obj["Key"])["Body"].read()
            assert secret.encode() not in body
    deadline = time.monotonic() + 15
    while len(mails := [raw for raw in mailer.raw_messages() if to.encode() in raw]) < 2:
        assert time.monotonic() < deadline, f"{len(mails)} of 2 reports mailed to {to}"
        time.sleep(0.1)
    assert all(secret.encode() not in raw for raw in mails)
    for path, data in files_under(home).items():
        if path not in before and secret.encode() in data:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            pytest.fail(f"tiffin wrote the secret into {path}")


@tried(
    "secret",
    "Who may read a backup in a folder",
    "`tiffin backup data local DIR` run under umask 000, with and without `--mode 0640`",
    "the backup and its manifest are 0600 (owner only) by default, 0640 with `--mode 0640`; "
    "a folder tiffin creates is 0700",
)
@pytest.mark.parametrize("mode", [None, "0640"], ids=["default", "--mode 0640"])
def test_local_backups_are_private_unless_mode_says_otherwise(
    mode: str | None, tmp_path: Path
) -> None:
    out = tmp_path / "b"
    args = [tiffin_exe(), "backup", "data", "local", str(out), *_data(tmp_path)]
    args += ["--mode", mode] if mode else []
    env = tiffin_env(tmp_path / "home")
    r = subprocess.run(args, env=env, capture_output=True, text=True, umask=0, timeout=120)
    assert r.returncode == 0, r.stderr
    [name] = backups(out)
    want = int(mode, 8) if mode else 0o600
    for path in (out / name, out / (name + ".manifest.json")):
        assert stat.S_IMODE(os.stat(path).st_mode) == want, path
    assert stat.S_IMODE(out.stat().st_mode) == 0o700

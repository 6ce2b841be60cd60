"""Every source to every remote target through the installed command, in the seed's form
(HOW WHERE [PATH]) and as a URL, restored and compared."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.helpers import tiffin
from tests.e2e.remotes import Remote, make_remote
from tests.servers.env import tiffin_env

KINDS = ["ftp", "ftps", "sftp", "s3", "s3multi"]


@pytest.fixture
def remote(request, tmp_path) -> Remote:
    return make_remote(request.param, request, tmp_path)


def data_tree(root: Path) -> Path:
    d = root / "data"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "random.bin").write_bytes(os.urandom(2_500_000))
    (d / "hello.txt").write_text("hello\n")
    return d


@pytest.mark.parametrize("remote", KINDS, indirect=True)
@pytest.mark.parametrize("form", ["seed", "url"])
def test_data_round_trip(remote: Remote, form, tmp_path):
    src = data_tree(tmp_path / "src")
    target = remote.seed() if form == "seed" else remote.as_url()
    r = tiffin(["backup", "data", *target, "--dir", str(src), "--compress", "none"], remote.env)
    assert "completed. Its (compressed) size is" in r.stdout
    secret_free = r.stdout + r.stderr
    assert "chowmein" not in secret_free
    restore_target = target[:3] if form == "seed" else target[:1]
    tiffin(
        ["restore", *restore_target, "latest", "--into", "dir", "--dir", str(tmp_path / "r")],
        remote.env,
    )
    got = tmp_path / "r" / "data"
    assert (got / "sub" / "random.bin").read_bytes() == (src / "sub" / "random.bin").read_bytes()
    assert (got / "hello.txt").read_text() == "hello\n"


@pytest.mark.parametrize("remote", KINDS, indirect=True)
def test_mysql_round_trip(remote: Remote, mariadb, tmp_path):
    db = f"remote_{uuid.uuid4().hex[:6]}"
    mariadb.sql(f"CREATE DATABASE {db}")
    mariadb.sql(
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB;"
        "INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_3000;",
        db,
    )
    env = {**remote.env, **mariadb.client_env()}
    tiffin(["backup", "mysql", *remote.seed(), *mariadb.conn_args(), "--database", db], env)
    mariadb.sql(f"DROP DATABASE {db}")
    tiffin(["restore", *remote.seed()[:3], "latest", "--into", "mysql", *mariadb.conn_args()], env)
    assert mariadb.sql("SELECT COUNT(*), MAX(v) FROM t", db) == mariadb.sql(
        "SELECT 3000, MAX(MD5(seq)) FROM seq_1_to_3000", db
    )


@pytest.mark.parametrize("remote", KINDS, indirect=True)
def test_pgsql_round_trip(remote: Remote, postgres, tmp_path):
    db = f"remote_{uuid.uuid4().hex[:6]}"
    postgres.sql(f'CREATE DATABASE "{db}"')
    postgres.sql(
        "CREATE TABLE t AS SELECT i AS id, md5(i::text) AS v FROM generate_series(1, 3000) i", db
    )
    env = {**remote.env, **postgres.client_env()}
    tiffin(
        [
            "backup",
            "pgsql",
            *remote.as_url(),
            *postgres.conn_args(),
            "--database",
            db,
            "--compress",
            "zstd",
        ],
        env,
    )
    postgres.sql(f'DROP DATABASE "{db}"')
    tiffin(["restore", remote.url, "latest", "--into", "pgsql", *postgres.conn_args()], env)
    assert postgres.sql("SELECT count(*), max(v) FROM t", db) == postgres.sql(
        "SELECT 3000, max(md5(i::text)) FROM generate_series(1, 3000) i"
    )


def test_seed_lines_work_as_written(s3_server, ftp_server, sshd, mariadb, tmp_path):
    """The seed's "Do a Manual Test Backup" lines, host names changed, paths as given."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    sshd.write_known_hosts(home / ".ssh" / "known_hosts")
    key = home / ".ssh" / "id_ed25519"
    key.write_bytes(Path(sshd.client_key).read_bytes())
    key.chmod(0o600)
    env = tiffin_env(home, **s3_server.env(), **mariadb.client_env())
    bucket = f"ramen-backups-{uuid.uuid4().hex[:6]}"
    s3_server.make_bucket(bucket)
    db = f"seed_{uuid.uuid4().hex[:6]}"
    mariadb.sql(f"CREATE DATABASE {db}")
    mariadb.sql("CREATE TABLE t (i INT) ENGINE=InnoDB; INSERT INTO t VALUES (1),(2),(3);", db)
    conn = [*mariadb.conn_args(), "--database", db]
    ftp_where = f"{ftp_server.user}:{ftp_server.password}@{ftp_server.host}:{ftp_server.port}"
    lines = [
        ["mysql", "ftp", ftp_where],
        ["mysql", "ssh", f"{sshd.user}@{sshd.host}:{sshd.port}", "backups/sql"],
        ["mysql", "s3", bucket],
        ["mysql", "s3multi", bucket],
    ]
    for line in lines:
        # Names hold the UTC second: two runs within one second to one bucket (s3, then
        # s3multi) would be one name, and the second refused as existing already.
        time.sleep(1.01 - time.time() % 1)
        r = tiffin(["backup", *line, *conn], env)
        assert "completed" in r.stdout
    assert (sshd.home / "backups" / "sql").is_dir()
    assert any(p.name.endswith(".sql.gz") for p in Path(ftp_server.root).iterdir())
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.endswith(".sql.gz") and "/" not in k for k in keys)  # s3: one object
    assert any(k.endswith(".sql.gz.00") for k in keys)  # s3multi: NAME/NAME.00
    mariadb.sql(f"DROP DATABASE {db}")
    tiffin(["restore", "s3", bucket, "latest", "--into", "mysql", *mariadb.conn_args()], env)
    assert mariadb.sql("SELECT SUM(i) FROM t", db) == "6"

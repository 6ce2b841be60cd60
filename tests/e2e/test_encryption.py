"""--encrypt-to / --identity end to end: age after compression, through the installed command."""

from __future__ import annotations

import os
import subprocess
import tarfile

import pyrage
import pytest

from tests.e2e.helpers import backups, leftovers, manifest, tiffin
from tests.servers.env import tiffin_env


@pytest.fixture
def age_key(tmp_path):
    """An age identity file and its public key."""
    identity = pyrage.x25519.Identity.generate()
    path = tmp_path / "key.txt"
    path.write_text(f"# public key: {identity.to_public()}\n{identity}\n")
    path.chmod(0o600)
    return str(identity.to_public()), path


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "src" / "data"
    (root / "sub").mkdir(parents=True)
    (root / "notes.txt").write_text("hello, age\n" * 1000)
    (root / "sub" / "blob.bin").write_bytes(os.urandom(3 << 20))
    return root


def test_data_encrypted_to_an_age_key_round_trips(tmp_path, tree, age_key):
    recipient, key = age_key
    env = tiffin_env(tmp_path / "home", HOSTNAME="vault")
    out = tmp_path / "b"
    r = tiffin(
        ["backup", "data", "local", str(out), "--dir", str(tree), "--encrypt-to", recipient], env
    )
    [name] = backups(out)
    assert name.startswith("vault_") and name.endswith(".data.tar.gz.age")
    assert name in r.stdout
    stored = (out / name).read_bytes()
    assert stored.startswith(b"age-encryption.org/v1\n")
    assert not stored.startswith(b"\x1f\x8b") and b"hello, age" not in stored
    m = manifest(out, name)
    assert m["encryption"] == {"recipients": [recipient]}
    assert m["compression"] == "gzip" and m["size"] == len(stored)

    # age's reference implementation reads it, and the plain text inside is gzip.
    identity = pyrage.x25519.Identity.from_str(key.read_text().split()[-1])
    assert pyrage.decrypt(stored, [identity]).startswith(b"\x1f\x8b")

    dest = tmp_path / "restored"
    tiffin(
        [
            "restore",
            "local",
            str(out),
            name,
            "--into",
            "dir",
            "--dir",
            str(dest),
            "--identity",
            str(key),
        ],
        env,
    )
    assert (dest / "data" / "notes.txt").read_text() == (tree / "notes.txt").read_text()
    assert (dest / "data" / "sub" / "blob.bin").read_bytes() == (
        tree / "sub" / "blob.bin"
    ).read_bytes()


def test_restore_of_an_encrypted_backup_without_identity_is_a_usage_error(tmp_path, tree, age_key):
    recipient, _ = age_key
    out = tmp_path / "b"
    tiffin(["backup", "data", "local", str(out), "--dir", str(tree), "--encrypt-to", recipient])
    r = tiffin(["restore", "local", str(out), "latest", "--output", str(tmp_path / "x")], expect=2)
    assert r.stderr.count("\n") == 1 and "--identity" in r.stderr
    assert not (tmp_path / "x").exists()


def test_restore_with_the_wrong_identity_fails_clearly(tmp_path, tree, age_key):
    recipient, _ = age_key
    out = tmp_path / "b"
    tiffin(["backup", "data", "local", str(out), "--dir", str(tree), "--encrypt-to", recipient])
    other = tmp_path / "other.txt"
    other.write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    target = tmp_path / "x.tar"
    r = tiffin(
        ["restore", "local", str(out), "latest", "--output", str(target), "--identity", str(other)],
        expect=1,
    )
    assert r.stderr.count("\n") == 1 and "not one of the recipients" in r.stderr
    assert not target.exists() and not (tmp_path / "x.tar.partial").exists()


@pytest.mark.parametrize(
    "recipient", ["age1qqqqqqqqqqqqqqqq", "ssh-dss AAAAB3NzaC1kc3MAAACBA", "alice@example.com"]
)
def test_a_malformed_recipient_is_refused_before_anything_runs(tmp_path, tree, recipient):
    out = tmp_path / "b"
    r = tiffin(
        ["backup", "data", "local", str(out), "--dir", str(tree), "--encrypt-to", recipient],
        expect=2,
    )
    assert r.stderr.count("\n") == 1 and "--encrypt-to" in r.stderr
    assert leftovers(out) == []


def test_an_ssh_recipient_and_several_recipients(tmp_path, tree, age_key):
    ssh_key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh_key)], check=True)
    ssh_pub = (tmp_path / "id_ed25519.pub").read_text().strip()
    out = tmp_path / "b"
    tiffin(
        [
            "backup",
            "data",
            "local",
            str(out),
            "--dir",
            str(tree),
            "--compress",
            "zstd",
            "--encrypt-to",
            ssh_pub,
            "--encrypt-to",
            age_key[0],
        ]
    )
    [name] = backups(out)
    assert name.endswith(".data.tar.zst.age")
    assert manifest(out, name)["encryption"] == {"recipients": [ssh_pub, age_key[0]]}
    for identity in (ssh_key, age_key[1]):  # either recipient alone decrypts
        target = tmp_path / f"{identity.name}.tar"
        tiffin(
            [
                "restore",
                "local",
                str(out),
                name,
                "--output",
                str(target),
                "--identity",
                str(identity),
            ]
        )
        listing = subprocess.run(
            ["tar", "tf", str(target)], capture_output=True, text=True, check=True
        ).stdout.split()
        assert "data/sub/blob.bin" in listing


def test_mysql_encrypted_backup_restores_rows(mariadb, tmp_path, age_key):
    recipient, key = age_key
    env = tiffin_env(tmp_path / "home", **mariadb.client_env(), HOSTNAME="sql-vault")
    mariadb.sql("DROP DATABASE IF EXISTS vault; CREATE DATABASE vault")
    mariadb.sql(
        "CREATE TABLE secrets (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=InnoDB;"
        + "INSERT INTO secrets VALUES "
        + ",".join(f"({i}, 'secret-{i}')" for i in range(200)),
        "vault",
    )
    out = tmp_path / "b"
    args = ["backup", "mysql", "local", str(out), *mariadb.conn_args(), "--database", "vault"]
    tiffin([*args, "--encrypt-to", recipient], env)
    [name] = backups(out)
    assert name.startswith("sql-vault_") and name.endswith(".sql.gz.age")
    stored = (out / name).read_bytes()
    assert b"secret-1" not in stored and not stored.startswith(b"\x1f\x8b")
    assert manifest(out, name)["encryption"] == {"recipients": [recipient]}

    mariadb.sql("DROP DATABASE vault")
    restore = ["restore", "local", str(out), name, "--into", "mysql", *mariadb.conn_args()]
    r = tiffin(restore, env, expect=2)
    assert "--identity" in r.stderr
    tiffin([*restore, "--identity", str(key)], env)
    assert mariadb.sql("SELECT COUNT(*), MAX(v) FROM secrets", "vault") == "200\tsecret-99"


def test_encrypted_backup_to_s3_round_trips(s3_server, tmp_path, tree, age_key):
    recipient, key = age_key
    bucket = s3_server.make_bucket("vault-bucket")
    env = tiffin_env(tmp_path / "home", **s3_server.env())
    tiffin(
        ["backup", "data", "s3", bucket, "nightly", "--dir", str(tree), "--encrypt-to", recipient],
        env,
    )
    objects = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
    [name] = [o["Key"].split("/")[-1] for o in objects if o["Key"].endswith(".age")]
    body = s3_server.client().get_object(Bucket=bucket, Key="nightly/" + name)["Body"].read()
    assert body.startswith(b"age-encryption.org/v1\n")
    target = tmp_path / "x.tar"
    tiffin(
        [
            "restore",
            "s3",
            bucket,
            "nightly",
            "latest",
            "--output",
            str(target),
            "--identity",
            str(key),
        ],
        env,
    )
    with tarfile.open(target) as tar:
        assert {"data/notes.txt", "data/sub/blob.bin"} <= set(tar.getnames())

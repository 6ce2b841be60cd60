"""A drill records its verdict beside the backup (SPEC §4: NAME.drill.json), on every kind of
target, through the installed command; `list` is unaffected by it and `prune` deletes it with
its backup. What is stored is read back from the server's own side (its folder on disk, or
the bucket through boto3), not through tiffin."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import tiffin
from tests.e2e.remotes import Remote, make_remote
from tests.servers.env import tiffin_env
from tiffin import __version__

KINDS = ["local", "ftp", "sftp", "s3", "s3multi"]
SECRETS = ("chowmein", "AWS_SECRET", "password")


class Stored:
    """The target's folder as its server holds it: a folder on disk, or a bucket's prefix."""

    def __init__(self, where: Any, folder: str) -> None:
        self.where, self.folder = where, folder

    def names(self) -> list[str]:
        if isinstance(self.where, Path):
            return sorted(p.name for p in self.where.iterdir()) if self.where.exists() else []
        client, bucket = self.where
        got = client.list_objects_v2(Bucket=bucket, Prefix=self.folder + "/")
        keys = [o["Key"][len(self.folder) + 1 :] for o in got.get("Contents", [])]
        return sorted({k.split("/")[0] for k in keys})

    def read(self, name: str) -> bytes:
        if isinstance(self.where, Path):
            return (self.where / name).read_bytes()
        client, bucket = self.where
        return client.get_object(Bucket=bucket, Key=f"{self.folder}/{name}")["Body"].read()

    def write(self, name: str, data: bytes) -> None:
        if isinstance(self.where, Path):
            (self.where / name).write_bytes(data)
        else:
            client, bucket = self.where
            client.put_object(Bucket=bucket, Key=f"{self.folder}/{name}", Body=data)

    def record(self, name: str) -> dict[str, Any]:
        return json.loads(self.read(name + ".drill.json"))


@pytest.fixture
def place(request, tmp_path) -> tuple[Remote, Stored]:
    kind = request.param
    if kind == "local":
        out = tmp_path / "b"
        env = tiffin_env(tmp_path / "home", HOSTNAME="drilled")
        return Remote("local", str(out), "", str(out), env), Stored(out, "")
    remote = make_remote(kind, request, tmp_path)
    remote.env["HOSTNAME"] = "drilled"
    if kind == "ftp":
        root = request.getfixturevalue("ftp_server").root
        return remote, Stored(Path(root) / remote.path, remote.path)
    if kind == "sftp":
        home = request.getfixturevalue("sshd").home
        return remote, Stored(Path(home) / remote.path, remote.path)
    client = request.getfixturevalue("s3_server").client()
    return remote, Stored((client, remote.where), remote.path)


def sqlite_backup(remote: Remote, tmp_path: Path, rows: int) -> str:
    db = tmp_path / "app.db"  # one source: prune groups its backups together
    db.unlink(missing_ok=True)
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    con.executemany("INSERT INTO t (v) VALUES (?)", [(f"row {i}",) for i in range(rows)])
    con.commit()
    con.close()
    tiffin(["backup", "sqlite", *at(remote, True), "--file", str(db)], remote.env)
    return str(listed(remote)[0]["name"])


def at(remote: Remote, backup: bool = False) -> list[str]:
    """The target as the command line names it (a backup takes --chunk-size too)."""
    if remote.how == "local":
        return ["local", remote.where]
    return [remote.url, *(remote.extra if backup else [])]


def listed(remote: Remote) -> list[dict[str, Any]]:
    return json.loads(tiffin(["list", *at(remote), "--json"], remote.env).stdout)


@pytest.mark.parametrize("place", KINDS, indirect=True)
def test_a_drill_records_its_verdict_beside_the_backup(place, tmp_path):
    remote, stored = place
    name = sqlite_backup(remote, tmp_path, 500)
    before = listed(remote)
    drill = ["drill", *at(remote), name, "--into", "sqlite"]
    r = tiffin(drill, remote.env)
    assert "WARNING" not in r.stdout + r.stderr
    rec = stored.record(name)
    assert rec["name"] == name and rec["passed"] is True and rec["into"] == "sqlite"
    assert rec["checked"]["counts"] == {"tables": 1, "rows": 500}
    assert rec["checked"]["summary"] == "1 table, 500 rows" and rec["reason"] is None
    assert rec["tiffin_version"] == __version__
    when = datetime.strptime(rec["drilled_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - when) < timedelta(hours=1)
    text = stored.read(name + ".drill.json").decode()
    secrets = [*SECRETS, remote.env.get("AWS_SECRET_ACCESS_KEY", "chowmein")]
    if ":" in remote.where.split("@")[0]:  # user:password@host
        secrets.append(remote.where.split("@")[0].split(":", 1)[1])
    assert not any(s in text for s in secrets), text
    assert listed(remote) == before

    manifest = json.loads(stored.read(name + ".manifest.json"))
    manifest["source"]["tables"]["t"] = 600
    stored.write(name + ".manifest.json", json.dumps(manifest).encode())
    r = tiffin(drill, remote.env, expect=1)
    assert f"Drill of {name} FAILED: table t has 500 rows; the backup held 600" in r.stderr
    rec = stored.record(name)
    assert rec["passed"] is False
    assert rec["reason"] == "table t has 500 rows; the backup held 600"
    assert rec["checked"]["counts"] == {"tables": 1, "rows": 500}
    assert [x["name"] for x in listed(remote)] == [name]

    time.sleep(1.1)  # the next backup's name is of a later second
    newest = sqlite_backup(remote, tmp_path, 10)
    tiffin(["drill", *at(remote), newest, "--into", "sqlite"], remote.env)
    orphan = name.replace("drilled_", "drilled-gone_") + ".drill.json"
    stored.write(orphan, b"{}")
    assert {name + ".drill.json", newest + ".drill.json", orphan} <= set(stored.names())
    r = tiffin(["prune", *at(remote), "--keep-last", "1"], remote.env)
    assert f"deleted {name}" in r.stdout
    left = stored.names()
    assert not [n for n in left if n.startswith(name) or n == orphan], left
    assert newest + ".drill.json" in left and stored.record(newest)["passed"] is True
    assert [x["name"] for x in listed(remote)] == [newest]


def test_a_record_that_cannot_be_stored_is_a_warning_not_a_verdict(tmp_path):
    """A folder the drill may read but not write: the verdict stands, one WARNING says why."""
    remote = Remote("local", str(tmp_path / "b"), "", str(tmp_path / "b"), tiffin_env())
    remote.env["HOSTNAME"] = "drilled"
    name = sqlite_backup(remote, tmp_path, 5)
    (tmp_path / "b" / (name + ".drill.json")).mkdir()  # cannot be replaced by a file
    r = tiffin(["drill", *at(remote), name, "--into", "sqlite"], remote.env)
    assert f"Drill of {name} passed" in r.stdout
    assert f"WARNING: the drill's result could not be stored as {name}.drill.json" in r.stdout
    assert r.stdout.count("WARNING") == 1

"""list, verify and prune through the installed command, on a folder and on S3."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.helpers import backups, manifest, tiffin
from tests.servers.env import tiffin_env
from tiffin.catalog.naming import make_name, parse_name

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "src" / "data"
    root.mkdir(parents=True)
    (root / "notes.txt").write_text("hello\n" * 2000)
    (root / "blob.bin").write_bytes(os.urandom(200_000))
    return root


@pytest.fixture
def env(tmp_path):
    return tiffin_env(tmp_path / "home", HOSTNAME="web-1")


def make_backup(out, tree, env, *extra: str) -> str:
    tiffin(["backup", "data", "local", str(out), "--dir", str(tree), *extra], env)
    return sorted(backups(out))[-1]


def copy_as(out, name: str, when: datetime, label: str = "web-1", with_manifest=True) -> str:
    """Copy the backup NAME in OUT to the name it would have had at WHEN: a complete backup
    of that time, as far as any tiffin command can tell."""
    new = make_name(label, "data", when, "gzip", False)
    shutil.copyfile(out / name, out / new)
    if with_manifest:
        m = manifest(out, name)
        m["name"], m["label"] = new, label
        (out / (new + ".manifest.json")).write_text(json.dumps(m))
    return new


def rewrite(out, name: str, data: bytes, **fields) -> None:
    """Store DATA as NAME; FIELDS (size, sha256) overwrite the manifest's."""
    (out / name).write_bytes(data)
    m = manifest(out, name)
    m.update(fields)
    (out / (name + ".manifest.json")).write_text(json.dumps(m))


def test_list_shows_every_backup_newest_first_and_ignores_other_files(tmp_path, tree, env):
    out = tmp_path / "b"
    newest = make_backup(out, tree, env)
    older = copy_as(out, newest, NOW - timedelta(days=2))
    other = copy_as(out, newest, NOW - timedelta(days=1), label="db-2")
    incomplete = copy_as(out, newest, NOW - timedelta(days=3), with_manifest=False)
    partial = make_name("web-1", "data", NOW - timedelta(days=4), "gzip", False)
    (out / (partial + ".partial")).write_bytes(b"half")
    (out / "README.txt").write_text("not a backup")
    (out / "subdir").mkdir()

    r = tiffin(["list", "local", str(out)], env)
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "WHAT", "SIZE", "CREATED", "(UTC)", "STATUS"]
    assert [ln.split()[0] for ln in lines[1:]] == [newest, other, older, incomplete, partial]
    size = (out / newest).stat().st_size
    created = parse_name(newest).created.strftime("%Y-%m-%d %H:%M:%S")
    assert lines[1].split() == [newest, "data", str(size), *created.split(), "complete"]
    assert lines[4].split()[-1] == "incomplete" and "partial" in lines[5]
    assert "README" not in r.stdout and "subdir" not in r.stdout

    items = json.loads(tiffin(["list", f"file://{out}", "--json"], env).stdout)
    assert [i["name"] for i in items] == [newest, other, older, incomplete, partial]
    first = items[0]
    assert first["size"] == size and first["complete"] is True
    assert first["label"] == "web-1" and first["what"] == "data"
    assert datetime.strptime(first["created"], "%Y-%m-%dT%H:%M:%SZ") <= datetime.now()
    assert first["sha256"] == manifest(out, newest)["sha256"]
    assert items[3]["complete"] is False and items[4]["partial"] is True

    mine = json.loads(tiffin(["list", "local", str(out), "--json", "--label", "db-2"], env).stdout)
    assert [i["name"] for i in mine] == [other]
    r = tiffin(["list", "local", str(out), "--what", "mysql"], env)
    assert r.stdout.startswith("No backups at file://")
    r = tiffin(["list", "local", str(out), "--what", "oracle"], env, expect=2)
    assert "--what" in r.stderr


def test_verify_reads_every_byte_and_names_what_is_wrong(tmp_path, tree, env):
    out = tmp_path / "b"
    name = make_backup(out, tree, env)
    good = (out / name).read_bytes()
    sha = hashlib.sha256(good).hexdigest()
    r = tiffin(["verify", "local", str(out), name], env)
    assert r.stdout.strip() == f"OK {name} ({len(good)} bytes, sha256 {sha})"
    tiffin(["verify", "local", str(out), "latest"], env)

    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    (out / name).write_bytes(bytes(flipped))
    r = tiffin(["verify", "local", str(out), name], env, expect=1)
    assert f"FAILED {name}: its sha256 does not match its manifest" in r.stdout
    assert name in r.stderr

    (out / name).write_bytes(good[:-100])
    r = tiffin(["verify", "local", str(out), name], env, expect=1)
    assert f"it holds {len(good) - 100} bytes, its manifest says {len(good)}" in r.stdout

    rewrite(out, name, good, size=len(good) + 7)  # the manifest lies about the size
    r = tiffin(["verify", "local", str(out), name], env, expect=1)
    assert f"it holds {len(good)} bytes, its manifest says {len(good) + 7}" in r.stdout

    cut = good[: len(good) // 2]  # stored bytes and manifest agree, the gzip stream ends early
    rewrite(out, name, cut, size=len(cut), sha256=hashlib.sha256(cut).hexdigest())
    r = tiffin(["verify", "local", str(out), name], env, expect=1)
    assert "does not decode to its end" in r.stdout and "truncated" in r.stdout

    rewrite(out, name, good, size=len(good), sha256=sha)
    tiffin(["verify", "local", str(out), name], env)
    lost = copy_as(out, name, NOW - timedelta(days=1), with_manifest=False)
    r = tiffin(["verify", "local", str(out), lost], env, expect=1)
    assert f"INCOMPLETE {lost}: it has no manifest" in r.stdout
    r = tiffin(["verify", "local", str(out), "--all"], env)  # incomplete ones do not fail --all
    assert r.stdout.splitlines()[-1] == "Verified 2 backups: 1 OK, 0 FAILED, 1 incomplete."
    r = tiffin(["verify", "local", str(out), "nope_2020-01-01_00:00:00_UTC.sql.gz"], env, expect=1)
    assert "no backup named" in r.stderr
    tiffin(["verify", "local", str(out)], env, expect=2)
    tiffin(["verify", "local", str(out), name, "--all"], env, expect=2)


def test_prune_dry_run_deletes_nothing_and_prune_keeps_the_newest(tmp_path, tree, env):
    out = tmp_path / "b"
    newest = make_backup(out, tree, env)
    days = [copy_as(out, newest, NOW - timedelta(days=d)) for d in range(1, 10)]
    stale = copy_as(out, newest, NOW - timedelta(days=12), with_manifest=False)
    old = time.time() - 3 * 86400
    os.utime(out / stale, (old, old))
    running = make_name("web-1", "data", NOW - timedelta(days=13), "gzip", False)
    (out / (running + ".partial")).write_bytes(b"still writing")  # written just now
    before = sorted(os.listdir(out))

    tiffin(["prune", "local", str(out)], env, expect=2)
    r = tiffin(["prune", "local", str(out), "--keep-daily", "3", "--dry-run"], env)
    assert sorted(os.listdir(out)) == before
    assert f"keep {newest}: daily {NOW:%Y-%m-%d}" in r.stdout
    assert f"would delete {days[5]}: no rule keeps it" in r.stdout
    assert f"would delete {stale}: incomplete (no manifest), 3 days old" in r.stdout
    assert f"keep {running}: partial upload, 0 hours old: may still be running" in r.stdout
    assert "nothing was deleted" in r.stdout

    r = tiffin(["prune", "local", str(out), "--keep-daily", "3"], env)
    assert backups(out) == sorted([newest, days[0], days[1]])
    assert not (out / days[2]).exists() and not (out / (days[2] + ".manifest.json")).exists()
    assert not (out / stale).exists() and (out / (running + ".partial")).exists()
    assert f"deleted {days[2]}" in r.stdout

    # Whatever the policy, the newest complete backup stays.
    tiffin(["prune", "local", str(out), "--keep-yearly", "1"], env)
    assert backups(out) == [newest]


def test_list_verify_and_prune_on_s3_and_s3multi(s3_server, tmp_path, tree):
    env = tiffin_env(tmp_path / "home", HOSTNAME="web-1", **s3_server.env())
    s3 = s3_server.client()
    bucket = s3_server.make_bucket(f"inventory-{os.getpid()}")
    tiffin(["backup", "data", "s3", bucket, "one", "--dir", str(tree)], env)
    time.sleep(1)
    tiffin(["backup", "data", "s3", bucket, "one", "--dir", str(tree)], env)
    items = json.loads(tiffin(["list", f"s3://{bucket}/one", "--json"], env).stdout)
    assert len(items) == 2 and all(i["complete"] for i in items)
    r = tiffin(["verify", "s3", bucket, "one", "--all"], env)
    assert r.stdout.count("OK ") == 2
    key = f"one/{items[1]['name']}"
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[100] ^= 0x40
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    r = tiffin(["verify", "s3", bucket, "one", "--all"], env, expect=1)
    assert f"FAILED {items[1]['name']}: its sha256" in r.stdout
    tiffin(["prune", "s3", bucket, "one", "--keep-last", "1"], env)
    assert [
        i["name"] for i in json.loads(tiffin(["list", f"s3://{bucket}/one", "--json"], env).stdout)
    ] == [items[0]["name"]]

    # s3multi: a backup in 1 MiB chunks; one flipped byte, then one missing chunk
    (tree / "big.bin").write_bytes(os.urandom(3 << 20))
    multi = ["s3multi", bucket, "multi"]
    tiffin(
        ["backup", "data", *multi, "--dir", str(tree), "--chunk-size", "1M", "--compress", "none"],
        env,
    )
    [item] = json.loads(tiffin(["list", *multi, "--json"], env).stdout)
    name = item["name"]
    m = json.loads(s3.get_object(Bucket=bucket, Key=f"multi/{name}.manifest.json")["Body"].read())
    assert len(m["parts"]) >= 3
    r = tiffin(["verify", *multi, "latest"], env)
    assert f"{len(m['parts'])} chunks" in r.stdout
    chunk = f"multi/{name}/{name}.01"
    data = bytearray(s3.get_object(Bucket=bucket, Key=chunk)["Body"].read())
    data[7] ^= 0x01
    s3.put_object(Bucket=bucket, Key=chunk, Body=bytes(data))
    r = tiffin(["verify", *multi, name], env, expect=1)
    assert f"the chunk {name}.01 does not match its manifest" in r.stdout
    s3.delete_object(Bucket=bucket, Key=chunk)
    r = tiffin(["verify", *multi, name], env, expect=1)
    assert f"FAILED {name}: the chunk {name}.01 of {name} is missing" in r.stdout
    assert "damaged" in tiffin(["list", *multi], env).stdout
    r = tiffin(["prune", *multi, "--keep-last", "1"], env)  # a damaged backup stays
    assert f"keep {name}: damaged" in r.stdout
    last = f"multi/{name}/{name}.{len(m['parts']) - 1:02d}"
    s3.delete_object(Bucket=bucket, Key=last)
    r = tiffin(["verify", *multi, name], env, expect=1)
    assert "missing" in r.stdout


def test_verify_decrypts_given_an_identity(tmp_path, tree, env):
    import pyrage

    keys = []
    for who in ("mine", "other"):
        identity = pyrage.x25519.Identity.generate()
        path = tmp_path / f"{who}.txt"
        path.write_text(f"{identity}\n")
        keys.append((str(identity.to_public()), path))
    out = tmp_path / "b"
    name = make_backup(out, tree, env, "--encrypt-to", keys[0][0])
    r = tiffin(["verify", "local", str(out), name], env)
    assert r.stdout.startswith(f"OK {name} (") and "not decrypted: give --identity" in r.stdout
    r = tiffin(["verify", "local", str(out), name, "--identity", str(keys[0][1])], env)
    assert "not decrypted" not in r.stdout and r.stdout.startswith(f"OK {name}")
    r = tiffin(["verify", "local", str(out), name, "--identity", str(keys[1][1])], env, expect=1)
    assert f"FAILED {name}: the stream does not decode to its end" in r.stdout
    assert "cannot decrypt" in r.stdout
    tiffin(["verify", "local", str(out), name, "--identity", str(tmp_path / "nope")], env, expect=2)


def test_backup_with_keep_last_prunes_only_after_success(tmp_path):
    import time as _time

    from tests.e2e.helpers import backups as complete_backups
    from tests.e2e.helpers import tiffin as run
    from tests.servers.env import tiffin_env as env_for

    src = tmp_path / "data"
    src.mkdir()
    (src / "f").write_text("x" * 1000)
    out = tmp_path / "b"
    env = env_for(tmp_path / "home")
    for _ in range(3):
        run(
            [
                "backup",
                "data",
                "local",
                str(out),
                "--dir",
                str(src),
                "--label",
                "k",
                "--min-ratio",
                "0",
            ],
            env,
        )
        _time.sleep(1.05)  # one backup per second: names are stamped to the second
    assert len(complete_backups(out)) == 3
    r = run(
        [
            "backup",
            "data",
            "local",
            str(out),
            "--dir",
            str(src),
            "--label",
            "k",
            "--keep-last",
            "2",
        ],
        env,
    )
    assert r.stdout.count("Pruned: ") == 2, r.stdout
    assert len(complete_backups(out)) == 2
    # a failed backup prunes nothing
    r = run(
        [
            "backup",
            "data",
            "local",
            str(out),
            "--dir",
            str(tmp_path / "gone"),
            "--label",
            "k",
            "--keep-last",
            "1",
        ],
        env,
        expect=1,
    )
    assert len(complete_backups(out)) == 2

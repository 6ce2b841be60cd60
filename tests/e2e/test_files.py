"""data and sqlite end to end, through the installed command."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import tarfile

import pytest

from tests.e2e.data import make_tree
from tests.e2e.helpers import backups, manifest, tiffin
from tests.servers.env import tiffin_env


@pytest.mark.parametrize("compress", ["gzip", "zstd", "none"])
def test_data_round_trip_keeps_bytes_modes_mtimes_and_links(tmp_path, compress):
    src = make_tree(tmp_path / "src")
    env = tiffin_env(tmp_path / "home", HOSTNAME="web-1")
    out = tmp_path / "b"
    tiffin(
        [
            "backup",
            "data",
            "local",
            str(out),
            "--dir",
            str(src),
            "--compress",
            compress,
            "--exclude",
            "*.tmp",
        ],
        env,
    )
    [name] = backups(out)
    assert name.endswith(
        {"gzip": ".data.tar.gz", "zstd": ".data.tar.zst", "none": ".data.tar"}[compress]
    )
    if compress == "gzip":  # plain tools read it
        listing = subprocess.run(
            ["tar", "tzf", str(out / name)], capture_output=True, text=True, check=True
        ).stdout.split()
        assert "data/notes.txt" in listing and "data/cache.tmp" not in listing
    dest = tmp_path / "restored"
    tiffin(["restore", "local", str(out), name, "--into", "dir", "--dir", str(dest)], env)
    got = dest / "data"
    assert (got / "photos" / "cat.jpg").read_bytes() == (src / "photos" / "cat.jpg").read_bytes()
    assert (got / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (got / "notes.txt").stat().st_mtime == 1_000_000_000
    assert os.readlink(got / "link") == "photos/cat.jpg"
    assert (got / "empty").read_bytes() == b""
    assert not (got / "cache.tmp").exists()
    # restoring again never overwrites without --overwrite
    r = tiffin(
        ["restore", "local", str(out), name, "--into", "dir", "--dir", str(dest)], env, expect=1
    )
    assert "overwrite" in r.stderr


def test_data_default_dir_is_home_data(tmp_path):
    home = tmp_path / "home"
    make_tree(home)
    tiffin(["backup", "data", "local", str(tmp_path / "b")], tiffin_env(home))
    [name] = backups(tmp_path / "b")
    with tarfile.open(tmp_path / "b" / name) as tar:
        assert tar.getnames()[0] == "data"


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_sqlite_round_trip(tmp_path, compress):
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    con.executemany("INSERT INTO t (v) VALUES (?)", [(f"row {i}",) for i in range(500)])
    con.commit()
    con.close()
    env = tiffin_env(tmp_path / "home")
    out = tmp_path / "b"
    tiffin(["backup", "sqlite", f"file://{out}", "--file", str(db), "--compress", compress], env)
    [name] = backups(out)
    assert manifest(out, name)["what"] == "sqlite"
    dest = tmp_path / "restored.db"
    tiffin(["restore", f"file://{out}", "latest", "--into", "sqlite", "--file", str(dest)], env)
    assert sqlite3.connect(dest).execute("SELECT count(*) FROM t").fetchone() == (500,)

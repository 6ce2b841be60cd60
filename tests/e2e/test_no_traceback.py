"""The cases once known to end in a traceback or an "unexpected error", run as a user runs
them (the installed command, real pipes and files). The classes behind them are fuzzed in
tests/fuzz; these are the examples a reader can check by hand."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.helpers import backups, tiffin, tiffin_exe
from tests.faults.tried import tried
from tests.servers.env import tiffin_env


def one_sentence(r: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert r.returncode == code, (r.stdout, r.stderr)
    assert "unexpected error" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    for word in words:
        assert word in r.stderr, r.stderr


def nul_in_toml(tmp: Path, env: dict[str, str]) -> None:
    for key, line in {
        "dir": f'dir = "{tmp}/da\\u0000ta"',
        "to": f'to = "file://{tmp}/t\\u0000x"',
        "path": 'path = "a\\u0000b"',
    }.items():
        lines = {"what": 'what = "data"', "to": f'to = "file://{tmp}/t"', "dir": f'dir = "{tmp}"'}
        lines[key] = line
        (tmp / "j.toml").write_text("[jobs.j]\n" + "\n".join(lines.values()) + "\n")
        r = tiffin(["run", "--config", str(tmp / "j.toml")], env, expect=None)
        one_sentence(r, 2, f"jobs.j.{key}: may not contain a NUL character")
    assert not (tmp / "t").exists()


def file_as_target_folder(tmp: Path, env: dict[str, str]) -> None:
    (tmp / "f").write_text("not a folder")
    where = ["local", str(tmp / "f")]
    for argv in (
        ["backup", "data", *where, "--dir", str(tmp)],
        ["backup", "data", "local", str(tmp / "f" / "sub"), "--dir", str(tmp)],
        ["list", *where],
        ["verify", *where, "--all"],
        ["prune", *where, "--keep-last", "1"],
        ["restore", *where, "latest", "--output", str(tmp / "o")],
    ):
        r = tiffin(argv, env, expect=None)
        one_sentence(r, 1, "Not a directory")
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert (tmp / "f").read_text() == "not a folder"


def stdout_closed(tmp: Path, env: dict[str, str]) -> None:
    (tmp / "data").mkdir()
    (tmp / "data" / "big").write_bytes(os.urandom(4 << 20))  # far more than a pipe holds
    tiffin(["backup", "data", "local", str(tmp / "b"), "--dir", str(tmp / "data")], env)
    argv = [tiffin_exe(), "restore", "local", str(tmp / "b"), "latest", "--output", "-"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert len(proc.stdout.read(100)) == 100  # as `| head -c100` does, then goes away
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert err == "", err  # quiet, as a Unix filter is


def env_file_not_text(tmp: Path, env: dict[str, str]) -> None:
    argv = ["backup", "data", "local", str(tmp / "b"), "--dir", str(tmp)]
    r = tiffin([*argv, "--env-file", "/proc/self/environ"], env, expect=None)
    one_sentence(r, 2, "--env-file /proc/self/environ, line 1: holds a NUL byte")
    (tmp / "latin1.env").write_bytes(b"TIFFIN_DB_PASSWORD=caf\xe9\n")
    r = tiffin([*argv, "--env-file", str(tmp / "latin1.env")], env, expect=None)
    one_sentence(r, 2, f"--env-file {tmp / 'latin1.env'} is not UTF-8 text")
    assert not (tmp / "b").exists()


def drill_wrong_types(tmp: Path, env: dict[str, str]) -> None:
    conn = sqlite3.connect(tmp / "src.db")
    conn.executescript("CREATE TABLE menu (id); INSERT INTO menu VALUES (1);")
    conn.close()
    tiffin(["backup", "sqlite", "local", str(tmp / "b"), "--file", str(tmp / "src.db")], env)
    [name] = backups(tmp / "b")
    path = tmp / "b" / (name + ".manifest.json")
    good = json.loads(path.read_text())
    for field, value in (("tables", ["menu"]), ("tables", {"menu": "1"}), ("tables", 7)):
        path.write_text(json.dumps({**good, "source": {**good["source"], field: value}}))
        r = tiffin(["drill", "local", str(tmp / "b"), name, "--into", "sqlite"], env, expect=None)
        one_sentence(r, 1, f"Drill of {name} FAILED: the manifest of {name} is not valid")
    path.write_text(json.dumps({**good, "size": "12"}))
    r = tiffin(
        ["restore", "local", str(tmp / "b"), name, "--output", str(tmp / "o")], env, expect=None
    )
    one_sentence(r, 1, "manifest.size must be a whole number")


def files_that_are_no_text(tmp: Path, env: dict[str, str]) -> None:
    """--password-file, --env-file and --config given /dev/zero (endless), a NUL, Latin-1
    bytes or arrays nested 5,000 deep: exit 2 in one sentence, read no further than a bound."""
    (tmp / "nul").write_bytes(b"pa\0ss\n")
    (tmp / "latin1").write_bytes(b"caf\xe9\n")
    (tmp / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    backup = ["backup", "data", "local", str(tmp / "b"), "--dir", str(tmp)]
    pgsql = ["backup", "pgsql", "local", str(tmp / "b"), "--host", "127.0.0.1", "--port", "9"]
    for argv, said in (
        ([*pgsql, "--password-file", "/dev/zero"], "holds more than a password"),
        ([*pgsql, "--password-file", str(tmp / "nul")], "holds more than a password"),
        ([*pgsql, "--password-file", str(tmp / "latin1")], "is not UTF-8 text"),
        ([*backup, "--env-file", "/dev/zero"], "is over 16 MiB"),
        (["run", "--config", "/dev/zero"], "is over 16 MiB"),
        (["run", "--config", str(tmp / "deep.toml")], "nest too deep"),
    ):
        one_sentence(tiffin(argv, env, expect=None, timeout=60), 2, said)
    assert not (tmp / "b").exists()


def line_breaks_for_ftp(tmp: Path, env: dict[str, str]) -> None:
    """A CR, LF or NUL in an FTP user, password or path, which ftplib refuses to send: exit 2
    before anything is contacted, the password never shown."""
    backup = ["backup", "data"]
    where = "bob:pw@127.0.0.1:9"
    for argv, extra in (
        ([*backup, "ftp://bob:SE%0aCRET@127.0.0.1:9/x"], {}),
        ([*backup, "ftp://bob:SE%0dCRET@127.0.0.1:9/x"], {}),
        ([*backup, "ftp", "bob@127.0.0.1:9"], {"TIFFIN_FTP_PASSWORD": "SE\nCRET"}),
        ([*backup, "ftp", "b\nob@127.0.0.1:9"], {"TIFFIN_FTP_PASSWORD": "pw"}),
        ([*backup, "ftp", where, "a\nb"], {}),
    ):
        r = tiffin([*argv, "--dir", str(tmp)], {**env, **extra}, expect=None, timeout=60)
        one_sentence(r, 2, "holds a line break or a NUL, which FTP cannot send")
        assert "CRET" not in r.stderr + r.stdout


CASES: dict[str, Callable[[Path, dict[str, str]], None]] = {
    "NUL in a TOML dir, to or path": nul_in_toml,
    "a file where the local target folder should be": file_as_target_folder,
    "restore --output - | head -c100": stdout_closed,
    "--env-file /proc/self/environ": env_file_not_text,
    "drill and restore of a manifest with wrong types": drill_wrong_types,
    "password, env and config files that are no text": files_that_are_no_text,
    "a line break in an FTP user, password or path": line_breaks_for_ftp,
}


@tried(
    "hostile",
    "Cases that once ended in a traceback or an unexpected error",
    "run as a user would: a NUL (\\u0000) in a TOML job's `dir`, `to` or `path`; a file where "
    "the local target folder should be (backup, list, verify, prune, restore); `restore "
    "--output -` whose reader closes the pipe after 100 bytes; `--env-file /proc/self/environ` "
    "and a Latin-1 env file; drill and restore of a manifest whose fields have the wrong types",
    "exit 2 naming the key or line (NUL, env file), exit 1 with one sentence (`Not a "
    "directory`, `the manifest of NAME is not valid: manifest.source.tables …`), or, for the "
    "closed pipe, exit 1 with nothing said; never a traceback or an unexpected error",
)
@pytest.mark.parametrize("case", list(CASES))
def test_known_cases_end_in_one_sentence(case: str, tmp_path: Path) -> None:
    CASES[case](tmp_path, tiffin_env(tmp_path / "home"))

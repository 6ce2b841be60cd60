"""The restore_command that `restore --into pgdata` writes runs walask, the fetch helper's
client, which becomes `tiffin wal-fetch` when no helper answers. Every word of it reads back
exactly through PostgreSQL's own reading of postgresql.auto.conf (`postgres -C`), its
%-escapes (%f, %p, %%) and /bin/sh; and a call that no helper answers (none yet, a socket
left by a dead one) ends as wal-fetch ends: the file at %p, or exit 1 and one sentence,
nothing partial at %p."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.e2e.helpers import tiffin_exe
from tests.readers import argv_printer, printed_argv
from tests.servers.env import tiffin_env
from tests.servers.postgres import BINDIR, OS_USER
from tiffin.commands import pgrestore, walask

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))  # each starts postgres -C and sh
SPECIAL = [
    "\u2028", "\u2029", "\x0c", "\x85", "\r", "\t", " ", "%", "%f", "%p", "%%", "%%f", "%r",
    "%x", "\\", "\\'", "''", "'", '"', "`", "$", "$(id)", "#", ";", "&", "|", "*", "~", "é",
    "--label", "--label=x", "wal-fetch", "-", "\\n", "\U0001f35c",
]  # fmt: skip
CHARS = st.characters(blacklist_characters="\x00\n", blacklist_categories=["Cs"])
TEXT = st.lists(st.sampled_from(SPECIAL) | st.text(CHARS, max_size=6), max_size=8).map("".join)
NAME = "000000010000000000000007"
DEST = "pg_wal/RECOVERYXLOG"  # as PostgreSQL gives %p: relative to the data directory


@pytest.fixture(scope="module")
def conf_dir() -> Iterator[Path]:
    """A folder the postgres OS user reads, for `postgres -C` to read postgresql.conf from."""
    folder = Path(tempfile.mkdtemp(prefix="tiffin-conf-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_by_postgresql(folder: Path, line: str) -> str:
    """Given a line of postgresql.auto.conf setting restore_command, return the value
    PostgreSQL reads from it."""
    (folder / "postgresql.conf").write_text(line + "\n", encoding="utf-8")
    r = subprocess.run(
        ["runuser", "-u", OS_USER, "--", str(BINDIR / "postgres"), "-D", str(folder),
         "-C", "restore_command"],
        capture_output=True, check=True, cwd="/",
    )  # fmt: skip
    assert r.stdout.endswith(b"\n")
    return r.stdout[:-1].decode("utf-8")


def expanded(command: str, name: str, path: str) -> str:
    """Given restore_command's value, return what PostgreSQL 15 hands to /bin/sh for NAME and
    PATH (BuildRestoreCommand, src/common/archive.c: %p, %f, %r and %% are replaced, any
    other % stays as it is)."""
    out, i = [], 0
    while i < len(command):
        c, nxt = command[i], command[i + 1 : i + 2]
        if c == "%" and nxt in ("p", "f", "r", "%"):
            out.append({"p": path, "f": name, "r": "000000010000000000000001", "%": "%"}[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def run_as_postgresql_does(
    command: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run restore_command's value for NAME and DEST as PostgreSQL does: %-escapes replaced,
    then `sh -c`, in the data directory."""
    return subprocess.run(
        ["/bin/sh", "-c", expanded(command, NAME, DEST)],
        cwd=cwd, capture_output=True, env=env, timeout=120,
    )  # fmt: skip


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(words=st.lists(TEXT, max_size=5))
@example(words=["local", "/b %f/100%%/it's \u2028 here", "--label", "a%pb"])
@example(words=["s3://bucket/wal", "--endpoint-url", "http://x/%25", "--insecure"])
def test_every_word_of_the_restore_command_reaches_wal_fetch_exactly(
    words: list[str], conf_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp("data")
    printer = argv_printer(data)  # stands for tiffin: run when no helper answers
    fetch = [printer, walask.FETCH, *words]
    command = pgrestore.restore_command(pgrestore.client_argv(fetch))
    [line] = [x for x in pgrestore.recovery_lines(command, None, None) if "restore_c" in x]
    assert read_by_postgresql(conf_dir, line) == command
    run = run_as_postgresql_does(command, data)
    assert run.returncode == 0, run.stderr
    assert printed_argv(run.stdout) == [walask.FETCH, *words, NAME, DEST]


def test_the_client_runs_isolated_and_loads_nothing_of_tiffin() -> None:
    fetch = ["/opt/tiffin/bin/tiffin", walask.FETCH, "local", "/b"]
    argv = pgrestore.client_argv(fetch)
    assert argv == [sys.executable, "-I", "-S", os.path.abspath(walask.__file__), *fetch]
    run = subprocess.run(
        [*argv[:3], "-X", "importtime", argv[3]], capture_output=True, text=True, cwd="/"
    )
    usage, *imports = run.stderr.splitlines()[::-1]
    assert run.returncode == 2 and usage.startswith("usage: walask.py"), run.stderr
    loaded = {line.rsplit("|", 1)[-1].strip() for line in imports}
    assert "os" in loaded and not {"site", "tiffin", "socket", "typing"} & loaded, loaded


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """An archive holding NAME (pushed by tiffin wal-push), and the environment to reach it."""
    env = tiffin_env(tmp_path / "home")
    wal = tmp_path / "pg_wal"
    wal.mkdir()
    (wal / NAME).write_bytes(os.urandom(1 << 16) * 256)  # 16 MiB
    folder = tmp_path / "archive"
    push = [tiffin_exe(), "wal-push", "local", str(folder), "--label", "db", str(wal / NAME)]
    subprocess.run(push, env=env, check=True, capture_output=True, cwd=tmp_path)
    yield folder, env


def data_dir_with_stale_socket(root: Path) -> Path:
    """A data directory whose spool holds the socket of a helper that is gone."""
    spool = root / "data" / "pg_wal" / walask.FETCHED
    spool.mkdir(parents=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    here = os.getcwd()
    os.chdir(spool)  # bound by a relative name: the folder's path may be past AF_UNIX's 107
    try:
        sock.bind(walask.SOCK)
    finally:
        os.chdir(here)
    sock.close()  # the path stays, nobody listens
    return root / "data"


def test_with_no_helper_answering_the_call_fetches_the_file_itself(
    archive: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, env = archive
    data = data_dir_with_stale_socket(tmp_path / "x")
    fetch = [tiffin_exe(), walask.FETCH, "local", str(folder), "--label", "db"]
    run = run_as_postgresql_does(pgrestore.restore_command(pgrestore.client_argv(fetch)), data, env)
    assert run.returncode == 0, run.stderr
    assert (data / DEST).read_bytes() == (folder.parent / "pg_wal" / NAME).read_bytes()


@pytest.mark.parametrize("why", ["not-archived", "target-gone", "tiffin-gone"])
def test_a_call_that_cannot_be_served_is_exit_1_one_sentence_and_nothing_at_p(
    why: str, archive: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, env = archive
    data = data_dir_with_stale_socket(tmp_path / "x")
    exe = str(tmp_path / "no-tiffin") if why == "tiffin-gone" else tiffin_exe()
    where = str(tmp_path / "gone") if why == "target-gone" else str(folder)
    fetch = [exe, walask.FETCH, "local", where, "--label", "db"]
    command = pgrestore.restore_command(pgrestore.client_argv(fetch))
    if why == "not-archived":
        command = command.replace("%f", "000000010000000000000009")
    run = run_as_postgresql_does(command, data, env)
    err = run.stderr.decode()
    assert run.returncode == 1, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (data / "pg_wal" / "RECOVERYXLOG").exists()
    assert not [p for p in (data / "pg_wal").iterdir() if p.name.startswith("RECOVERYXLOG")]

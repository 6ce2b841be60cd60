"""The watchdog of tiffin/engine/process.py on real child processes: no progress and no answer
from the server ends a child (its whole process group) with one sentence; a server that
answers keeps a silent child waiting."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tiffin.engine import process
from tiffin.errors import BackupFailed


@pytest.fixture(autouse=True)
def short_patience() -> Iterator[None]:
    before = process.patience()
    process.set_patience(0.5)
    yield
    process.set_patience(before)


def hung() -> None:
    raise BackupFailed("no answer")


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_a_silent_child_of_a_hung_server_is_killed_with_its_group(tmp_path) -> None:
    pidfile = tmp_path / "grandchild"
    cmd = ("sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait")
    reader = process.spawn_reader(cmd, name="dump", server=process.Server("the server S", hung))
    with pytest.raises(process.Stalled) as caught:
        reader.read()
    assert str(caught.value) == (
        "the server S stopped answering: dump made no progress for 0.5 seconds and was stopped"
    )
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 30
    while not gone(grandchild):
        assert time.monotonic() < deadline, "the child's own child outlived it"
        time.sleep(0.05)


def test_a_silent_child_of_a_server_that_answers_waits() -> None:
    cmd = ("sh", "-c", "sleep 2; echo done")
    answered = []
    server = process.Server("the server S", lambda: answered.append(1))
    assert process.run(cmd, name="count", server=server) == "done\n"
    assert answered, "the server was never asked"


def test_a_child_with_no_server_is_bounded_by_its_timeout() -> None:
    with pytest.raises(process.Stalled, match=r"^sleep did not answer within 0\.5 seconds$"):
        process.run(("sleep", "60"), name="sleep")


def test_a_load_whose_server_hangs_is_killed() -> None:
    """feed(): a child that stops taking bytes (its pipe full) is a child without progress."""
    stalled = pytest.raises(process.Stalled, match="stopped answering: load made no progress")
    with open("/dev/zero", "rb") as zeros, stalled:
        process.feed(("sleep", "60"), zeros, name="load", server=process.Server("S", hung))

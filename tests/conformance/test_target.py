"""The Target protocol (tiffin/targets/base.py), checked on every kind against its real server."""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from tests.conformance.kinds import Setup
from tiffin.engine.streams import IterReader, buffered
from tiffin.errors import AlreadyExists, NotFound, TargetError
from tiffin.targets import Target, make_target

# A failure inside a library's thread would reach the user as a traceback on stderr.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

NAME = "ramen-default-sql-0_2026-11-28_05:10:19_UTC.sql.gz"
MiB = 1 << 20


def pattern(size: int, seed: int = 0) -> bytes:
    """SIZE bytes that differ from block to block, so a misplaced block is caught."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 2048
        counter += 1
    return bytes(out[:size])


def chunks(data: bytes, step: int = 256 << 10) -> Iterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i : i + step]


def names(target: Target) -> set[tuple[str, bool]]:
    return {(e.name, e.partial) for e in target.list()}


def round_trip(target: Target, name: str, data: bytes) -> None:
    stored = target.put(name, io.BytesIO(data))
    assert stored.size == len(data)
    with target.open(name) as reader:
        assert reader.read() == data
    entry = target.stat(name)
    assert entry is not None and entry.size == len(data) and not entry.partial


@pytest.mark.parametrize("size", [0, 1, 3 * MiB + 1], ids=["0B", "1B", "3MiB+1"])
def test_put_then_open_round_trips_the_bytes(make_target: Callable[[], Target], size: int) -> None:
    round_trip(make_target(), NAME, pattern(size))


def test_put_then_open_round_trips_a_size_spanning_several_parts(
    make_target: Callable[[], Target], setup: Setup
) -> None:
    data = pattern(3 * setup.part_size + 12345, seed=1)
    target = make_target()
    round_trip(target, NAME, data)
    assert [(e.name, e.size) for e in target.list()] == [(NAME, len(data))]


def test_a_new_connection_reads_what_another_stored(make_target: Callable[[], Target]) -> None:
    data = pattern(MiB + 3)
    make_target().put(NAME, io.BytesIO(data))
    with make_target().open(NAME) as reader:
        assert reader.read() == data


def test_list_of_a_folder_not_yet_created_is_empty(make_target: Callable[[], Target]) -> None:
    assert make_target().list() == []


def test_names_with_colons_round_trip_and_list(make_target: Callable[[], Target]) -> None:
    target = make_target()
    manifest = NAME + ".manifest.json"
    round_trip(target, NAME, b"dump")
    round_trip(target, manifest, b"{}")
    assert names(target) == {(NAME, False), (manifest, False)}


def test_put_of_an_existing_name_is_refused_and_keeps_its_bytes(
    make_target: Callable[[], Target],
) -> None:
    target = make_target()
    target.put(NAME, io.BytesIO(b"first"))
    other = io.BytesIO(b"second")
    with pytest.raises(AlreadyExists):
        target.put(NAME, other)
    assert other.tell() == 0, "the reader was read although the name exists"
    with target.open(NAME) as reader:
        assert reader.read() == b"first"
    assert names(target) == {(NAME, False)}


def test_put_of_failing_stream_leaves_nothing(make_target: Callable[[], Target]) -> None:
    def broken() -> Iterator[bytes]:
        yield from chunks(pattern(2 * MiB + 5))
        raise RuntimeError("the dump tool died")

    target = make_target()
    with pytest.raises(RuntimeError, match="the dump tool died"):
        target.put(NAME, buffered(IterReader(broken())))
    assert names(target) == set()
    assert names(make_target()) == set()
    round_trip(target, NAME, b"the target is still usable")


def test_server_stopped_mid_upload_gives_target_error_and_publishes_nothing(
    make_target: Callable[[], Target], setup: Setup
) -> None:
    server = setup.server
    if server is None:
        pytest.skip(f"{setup.url.kind} has no server to stop")
    target = make_target()
    target.list()  # connected and logged in before the server goes away

    def stream() -> Iterator[bytes]:
        for i, block in enumerate(chunks(pattern(64 * MiB, seed=2))):
            if i == 16:  # 4 MiB in
                server.stop()
            yield block

    try:
        with pytest.raises(TargetError) as caught:
            target.put(NAME, buffered(IterReader(stream())))
    finally:
        server.start()
    assert "\n" not in str(caught.value)
    assert (NAME, False) not in names(make_target())


def test_list_marks_partial_leftovers_as_partial(make_target: Callable[[], Target]) -> None:
    target = make_target()
    target.put(NAME + ".partial", io.BytesIO(b"half a dump"))
    target.put("other.sql.gz", io.BytesIO(b"whole"))
    listed = {e.name: e for e in target.list()}
    assert set(listed) == {NAME, "other.sql.gz"}
    assert listed[NAME].partial and listed[NAME].size == len(b"half a dump")
    assert not listed["other.sql.gz"].partial


def test_remove_deletes_and_removing_an_absent_name_is_no_error(
    make_target: Callable[[], Target],
) -> None:
    target = make_target()
    target.remove(NAME)  # the folder does not even exist yet
    target.put(NAME, io.BytesIO(b"x"))
    target.remove(NAME)
    target.remove(NAME)
    assert target.stat(NAME) is None
    assert names(target) == set()


def test_stat_of_an_absent_name_is_none(make_target: Callable[[], Target]) -> None:
    target = make_target()
    assert target.stat(NAME) is None
    target.put("other", io.BytesIO(b"x"))
    assert target.stat(NAME) is None


def test_open_of_an_absent_name_raises_not_found(make_target: Callable[[], Target]) -> None:
    target = make_target()
    with pytest.raises(NotFound):
        target.open(NAME)
    target.put("other", io.BytesIO(b"x"))
    with pytest.raises(NotFound):
        target.open(NAME)


def test_close_is_idempotent(make_target: Callable[[], Target]) -> None:
    target = make_target()
    target.list()
    target.close()
    target.close()


def test_wrong_credentials_give_one_clear_sentence_without_the_password(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    if setup.wrong_login is None:
        pytest.skip(f"{setup.url.kind} has no login")
    url, options = setup.wrong_login
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TargetError) as caught:
        make_target(url, options).close()
    message = str(caught.value)
    assert "refused" in message and (url.user or "") in message
    assert "\n" not in message and "Traceback" not in message
    for secret in setup.secrets:
        assert secret not in message
        assert secret not in caplog.text


def test_a_server_that_is_not_there_gives_one_clear_sentence(setup: Setup) -> None:
    if setup.unreachable is None:
        pytest.skip(f"{setup.url.kind} has no server to miss")
    url, options = setup.unreachable
    with pytest.raises(TargetError) as caught:
        target = make_target(url, options)
        try:
            target.list()  # a kind may connect lazily
        finally:
            target.close()
    message = str(caught.value)
    assert "127.0.0.1:" in message and "\n" not in message
    if url.port is not None:
        assert message.startswith("cannot reach the") and f"127.0.0.1:{url.port}:" in message


def test_a_reader_fails_loudly_when_the_server_goes_away_midway(
    make_target: Callable[[], Target], setup: Setup
) -> None:
    """open() never ends a cut transfer with a silent EOF. The object is larger than any
    read-ahead, so bytes are still missing when the server stops."""
    server = setup.server
    if server is None:
        pytest.skip(f"{setup.url.kind} has no server to stop")
    target = make_target()
    target.put(NAME, io.BytesIO(pattern(48 * MiB)))
    reader = target.open(NAME)
    assert len(reader.read(MiB)) == MiB
    server.stop()
    try:
        with pytest.raises(TargetError):
            while reader.read(MiB):
                pass
    finally:
        reader.close()
        server.start()


def test_a_hung_server_gives_target_error_within_the_timeout(setup: Setup) -> None:
    server = setup.server
    if server is None:
        pytest.skip(f"{setup.url.kind} has no server to hang")
    quick = replace(setup.options, timeout=1.0)
    target = make_target(setup.url, quick)
    target.put("before", io.BytesIO(b"x"))
    started = time.monotonic()
    try:
        with server.paused(), pytest.raises(TargetError):
            target.put(NAME, io.BytesIO(pattern(4 * MiB)))
        assert time.monotonic() - started < 10
        assert target.stat(NAME) is None, "the target does not recover once the server does"
    finally:
        target.close()

"""The tar thread's channel: a small file's entry is put in the block in one piece."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from tiffin.engine.streams import BLOCK
from tiffin.sources.directory import SMALL, _Channel


@pytest.mark.parametrize("have", [0, 1, 511, 512, 513, 5000])
@pytest.mark.parametrize("said", [0, 1, 512, 5000])
def test_a_small_entry_put_in_one_piece_holds_the_size_said_padded_and_reports_the_change(
    tmp_path: Path, have: int, said: int
) -> None:
    # _Channel.entry: the header, SAID bytes of a file now holding HAVE (fewer: zeros in
    # their place), one byte past SAID read to tell that the file grew, padding to 512.
    path = tmp_path / "f"
    body = secrets.token_bytes(have)
    path.write_bytes(body)
    chan = _Channel()
    chan.write(b"h" * 700)  # not at a block's start
    fd = os.open(path, os.O_RDONLY)
    try:
        got = chan.entry(b"H" * 1024, fd, said)
    finally:
        os.close(fd)
    assert got == (min(have, said), have > said)
    chan.finish(None)
    stream = b"".join(chan)
    data = body[:said] + bytes(max(0, said - have))
    assert stream == b"h" * 700 + b"H" * 1024 + data + bytes(-said % 512)
    assert chan.written == len(stream)


def test_an_entry_without_room_in_the_block_is_left_to_the_general_path(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    chan = _Channel()
    chan.write(bytes(BLOCK - 600))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert chan.entry(b"H" * 512, fd, 100) is None
        assert chan.entry(b"H" * 512, fd, SMALL + 1) is None
    finally:
        os.close(fd)
    assert chan.written == BLOCK - 600

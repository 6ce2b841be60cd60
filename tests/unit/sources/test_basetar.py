"""The facts of a base backup, read from its tar as it passes, in any cut of reads."""

from __future__ import annotations

import io
import random
import struct
import tarfile

import pytest

from tiffin.sources.basetar import BaseTarReader, facts

LABEL = (
    "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
    "CHECKPOINT LOCATION: 0/2000060\nSTART TIME: 2026-12-07 14:15:27 CET\nSTART TIMELINE: 3\n"
)
MANIFEST = (
    '{"PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n'
    + ",\n".join(f'{{ "Path": "base/1/{i}", "Size": 8192 }}' for i in range(3000))
    + '],\n"WAL-Ranges": [\n{ "Timeline": 3, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n'
    '],\n"Manifest-Checksum": "00"}\n'
)


def tar_of(members: dict[str, bytes], long_name: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if long_name:
            info = tarfile.TarInfo("base/" + "x" * 200)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    return buf.getvalue()


def read_all(data: bytes, seed: int) -> BaseTarReader:
    reader = BaseTarReader(io.BytesIO(data))
    rng = random.Random(seed)
    got = bytearray()
    while chunk := reader.read(rng.choice([1, 5, 511, 512, 513, 4096, 1 << 20])):
        got += chunk
    assert bytes(got) == data  # every byte passes unchanged
    return reader


@pytest.mark.parametrize("seed", range(5))
def test_facts_are_read_whatever_the_reads(seed: int) -> None:
    control = struct.pack("<Q", 7716565558976459291) + bytes(8184)
    data = tar_of(
        {
            "backup_label": LABEL.encode(),
            "base/1/1": bytes(100_000),
            "global/pg_control": control,
            "backup_manifest": MANIFEST.encode(),
        },
        long_name=True,
    )
    got = facts(read_all(data, seed))
    assert got.system_identifier == "7716565558976459291"
    assert (got.timeline, got.stop_timeline) == (3, 3)
    assert (got.start_lsn, got.stop_lsn) == ("0/2000028", "0/2000100")
    assert got.start_time <= got.stop_time


def test_a_stream_without_its_manifest_is_not_a_base_backup() -> None:
    control = struct.pack("<Q", 1) + bytes(8)
    data = tar_of({"backup_label": LABEL.encode(), "global/pg_control": control})
    with pytest.raises(ValueError, match="no WAL range"):
        facts(read_all(data, 0))
    with pytest.raises(ValueError, match="backup_label"):
        facts(read_all(tar_of({"x": b"y"}), 0))

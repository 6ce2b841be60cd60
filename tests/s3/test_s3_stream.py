"""S3Target against a real (moto) S3 server: streamed multipart uploads and their failures."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterator

import pytest

from tests.s3.conftest import Generated, MiB, options, url
from tests.servers.env import tiffin_env
from tests.servers.s3 import S3Server
from tiffin.engine.streams import IterReader, buffered
from tiffin.errors import AlreadyExists, NotFound, TargetError
from tiffin.targets import TARGETS
from tiffin.targets.s3 import S3Target
from tiffin.targets.s3parts import part_size


def sha256_of(reader: object) -> str:
    sha = hashlib.sha256()
    while block := reader.read(MiB):  # type: ignore[attr-defined]
        sha.update(block)
    return sha.hexdigest()


def test_registry_names_s3_target() -> None:
    assert TARGETS["s3"].load() is S3Target


def test_put_streams_200_mib_in_growing_parts(s3_env: S3Server, bucket: str) -> None:
    target = S3Target(url("s3", bucket), options(), first_part_size=5 * MiB, parts_per_step=4)
    data = Generated(200 * MiB)
    stored = target.put("big.sql.gz", data.reader())
    assert stored.size == 200 * MiB
    sizes = target.last_part_sizes
    assert sum(sizes) == 200 * MiB
    expected = [part_size(n, 5 * MiB, 4) for n in range(1, len(sizes))]
    assert list(sizes[:-1]) == expected
    assert 0 < sizes[-1] <= part_size(len(sizes), 5 * MiB, 4)
    assert sizes[0] == 5 * MiB and max(sizes) == 40 * MiB  # 5, 10, 20 then 40 MiB parts
    head = s3_env.client().head_object(Bucket=bucket, Key="backups/db/big.sql.gz")
    assert head["ContentLength"] == 200 * MiB
    assert head["ETag"].strip('"').endswith(f"-{len(sizes)}")
    with target.open("big.sql.gz") as f:
        assert sha256_of(f) == data.sha.hexdigest()
    assert target.stat("big.sql.gz") is not None
    target.close()


def test_every_upload_carries_a_crc32_checksum(s3_env: S3Server, bucket: str) -> None:
    """S3 checks each body against the x-amz-checksum-crc32 header tiffin computes (moto
    records it without checking): a whole object carries its CRC-32, a multipart upload is
    created for CRC-32 and completed with one checksum per part."""
    target = S3Target(url("s3", bucket), options(), first_part_size=5 * MiB)
    small = b"tiffin" * 1000
    target.put("small", io.BytesIO(small))
    target.put("multi", Generated(12 * MiB).reader())
    client = s3_env.client()
    whole = client.head_object(Bucket=bucket, Key="backups/db/small", ChecksumMode="ENABLED")
    assert whole["ChecksumCRC32"] == base64.b64encode(zlib.crc32(small).to_bytes(4, "big")).decode()
    multi = client.head_object(Bucket=bucket, Key="backups/db/multi", ChecksumMode="ENABLED")
    assert multi["ChecksumCRC32"]  # composite: the CRC-32 of its parts' CRC-32s
    target.close()


def test_small_stream_is_one_object(s3_env: S3Server, bucket: str) -> None:
    target = S3Target(url("s3", bucket), options(), first_part_size=5 * MiB)
    for name, size in (("empty", 0), ("one", 1), ("under", 5 * MiB - 1), ("exact", 5 * MiB)):
        data = Generated(size, seed=size)
        assert target.put(name, data.reader()).size == size
        with target.open(name) as f:
            assert sha256_of(f) == data.sha.hexdigest()
    assert target.last_part_sizes == (5 * MiB,)
    assert sorted((e.name, e.size) for e in target.list()) == [
        ("empty", 0),
        ("exact", 5 * MiB),
        ("one", 1),
        ("under", 5 * MiB - 1),
    ]


def test_existing_name_is_refused_before_reading(s3_env: S3Server, bucket: str) -> None:
    target = S3Target(url("s3", bucket), options())
    target.put("a:b:c.sql.gz", Generated(10).reader())
    untouched = Generated(10)
    with pytest.raises(AlreadyExists):
        target.put("a:b:c.sql.gz", untouched.reader())
    assert untouched.sent == 0


def test_put_of_failing_stream_leaves_no_object_and_no_upload(
    s3_env: S3Server, bucket: str
) -> None:
    target = S3Target(url("s3", bucket), options(), first_part_size=5 * MiB)
    data = Generated(100 * MiB, fail_at=23 * MiB)
    with pytest.raises(RuntimeError, match="the dump broke"):
        target.put("broken.sql.gz", data.reader())
    client = s3_env.client()
    assert client.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert target.list() == []


def test_interrupted_put_aborts_its_upload(s3_env: S3Server, bucket: str) -> None:
    target = S3Target(url("s3", bucket), options(), first_part_size=5 * MiB)
    data = Generated(100 * MiB, fail_at=31 * MiB, error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        target.put("interrupted.sql.gz", data.reader())
    client = s3_env.client()
    assert client.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_an_object_appearing_during_the_upload_is_never_replaced(
    s3_env: S3Server, bucket: str
) -> None:
    target = S3Target(url("s3", bucket), options(), first_part_size=5 * MiB)
    client = s3_env.client()
    key = "backups/db/raced.sql.gz"
    for size in (100, 12 * MiB):  # one put_object; a multipart upload

        def race(blocks: Iterator[bytes]) -> Iterator[bytes]:
            client.put_object(Bucket=bucket, Key=key, Body=b"the other writer")
            yield from blocks

        with pytest.raises(AlreadyExists):
            target.put("raced.sql.gz", buffered(IterReader(race(Generated(size).blocks()))))
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"the other writer"
        assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        client.delete_object(Bucket=bucket, Key=key)


def test_abandoned_upload_lists_as_partial_and_remove_aborts_it(
    s3_env: S3Server, bucket: str
) -> None:
    client = s3_env.client()
    client.create_multipart_upload(Bucket=bucket, Key="backups/db/left.sql.gz")
    target = S3Target(url("s3", bucket), options())
    [entry] = target.list()
    assert (entry.name, entry.partial) == ("left.sql.gz", True)
    target.remove("left.sql.gz")
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert target.list() == []
    target.remove("never-there")  # no error


def test_open_of_absent_name_is_not_found(s3_env: S3Server, bucket: str) -> None:
    target = S3Target(url("s3", bucket), options())
    with pytest.raises(NotFound):
        target.open("nothing.sql.gz")
    assert target.stat("nothing.sql.gz") is None


def test_missing_bucket_is_one_sentence(s3_env: S3Server, bucket: str) -> None:
    msg = "the bucket no-such-bucket does not exist (create it with: s3cmd mb s3://no-such-bucket)"
    with pytest.raises(TargetError) as err:
        S3Target(url("s3", "no-such-bucket"), options())
    assert str(err.value) == msg
    target = S3Target(url("s3", bucket), options(), first_part_size=5 * MiB)
    s3_env.client().delete_bucket(Bucket=bucket)  # gone after the target connected
    msg = msg.replace("no-such-bucket", bucket)
    for size in (10, 12 * MiB):
        with pytest.raises(TargetError) as err:
            target.put(f"{size}.sql.gz", Generated(size).reader())
        assert str(err.value) == msg
    with pytest.raises(TargetError) as err:
        target.list()
    assert str(err.value) == msg


def test_server_stopped_mid_upload_is_target_error(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = S3Server().start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        bucket = server.make_bucket("stopping")
        target = S3Target(url("s3", bucket), options(timeout=5), first_part_size=5 * MiB)
        data = Generated(60 * MiB)
        blocks = data.blocks()

        def stop_midway() -> object:
            for block in blocks:
                if data.sent == 16 * MiB:
                    server.stop()
                yield block

        with pytest.raises(TargetError, match=f"cannot reach S3 at {server.endpoint}: "):
            target.put("cut.sql.gz", buffered(IterReader(stop_midway())))  # type: ignore[arg-type]
        server.start()  # moto keeps nothing across a restart; the target works again
        server.make_bucket("stopping")
        assert target.put("again", Generated(10).reader()).size == 10
    finally:
        server.close()


def test_hung_server_times_out_and_publishes_nothing(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = S3Server().start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        bucket = server.make_bucket("hanging")
        target = S3Target(url("s3", bucket), options(timeout=1), first_part_size=5 * MiB)
        data = Generated(30 * MiB)
        blocks = data.blocks()

        def hang_midway() -> object:
            for block in blocks:
                if data.sent == 12 * MiB:
                    server.pause()
                yield block

        try:
            with pytest.raises(TargetError, match=r"cannot reach S3 at .*no answer in time"):
                target.put("hung.sql.gz", buffered(IterReader(hang_midway())))  # type: ignore[arg-type]
        finally:
            server.resume()
        assert target.stat("hung.sql.gz") is None
        # The abort timed out too; whether the server, once resumed, still ran the queued
        # request is luck: what remains can only be a partial leftover, which remove clears.
        assert all(e.partial for e in target.list())
        target.remove("hung.sql.gz")
        assert target.list() == []
        assert server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    finally:
        server.close()


MEMORY_CHILD = textwrap.dedent(
    """
    import random, sys
    from tiffin.job import TargetOptions, TargetURL
    from tiffin.engine.streams import IterReader, buffered
    from tiffin.targets.s3 import S3Target

    size = int(sys.argv[2])
    def blocks():
        rng = random.Random(7)
        sent = 0
        while sent < size:
            block = rng.randbytes(min(1 << 20, size - sent))
            sent += len(block)
            yield block

    target = S3Target(TargetURL("s3", host=sys.argv[1], path="mem"), TargetOptions())
    stored = target.put("big.sql.gz", buffered(IterReader(blocks())))
    assert stored.size == size, stored
    print(len(target.last_part_sizes))
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) * 1024)
    """
)


def test_streaming_300_mib_keeps_peak_memory_under_200_mb(s3_env: S3Server, bucket: str) -> None:
    env = tiffin_env(home=os.environ["HOME"], **s3_env.env())
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, bucket, str(300 * MiB)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    parts, peak = (int(x) for x in proc.stdout.split())
    print(f"peak RSS of a 300 MiB stream in {parts} parts: {peak / MiB:.1f} MiB")
    assert parts == 38  # 37 parts of 8 MiB, then 4 MiB
    assert peak < 200_000_000

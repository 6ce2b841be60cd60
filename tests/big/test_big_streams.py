"""More than 5 GiB streamed to s3 (one object) and s3multi (4 GiB chunks) on the moto server,
by a child process whose peak memory must stay under 200 MB. Not run by default:

    .venv/bin/pytest -m big tests/big

The child builds the backup's stages as the pipeline does (a generated stream, read ahead in
a thread, hashed, handed to Target.put), then reports what put() stored and its own VmHWM.
moto keeps every object in memory: each test deletes what it stored.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.env import tiffin_env
from tests.servers.s3 import S3Server

pytestmark = pytest.mark.big

MiB = 1 << 20
GiB = 1 << 30
SIZE = 5 * GiB + 3 * MiB + 17  # more than 5 GiB, not a whole number of blocks
CHUNK = 4 * GiB  # s3multi's default chunk
RSS_LIMIT_MB = 200
ROOT = Path(__file__).resolve().parents[2]


def generated(size: int) -> Iterator[bytes]:
    """SIZE deterministic bytes, 1 MiB at a time: one random block, each copy numbered, so
    that a lost, repeated or reordered block changes the sha256."""
    import random

    base = random.Random(20110210).randbytes(MiB)
    n = 0
    left = size
    while left > 0:
        block = (n.to_bytes(8, "big") + base[8:])[:left]
        yield block
        left -= len(block)
        n += 1


CHILD = """
import json, sys
from tests.big.test_big_streams import generated
from tiffin.job import TargetOptions, TargetURL
from tiffin.engine.streams import BLOCK, HashingReader, IterReader, Prefetch, buffered
from tiffin.targets import make_target

kind, bucket, name, size, endpoint = sys.argv[1:6]
target = make_target(TargetURL(kind, host=bucket, path="big"), TargetOptions(endpoint_url=endpoint))
stream = buffered(Prefetch(buffered(IterReader(generated(int(size))))))
hashing = HashingReader(stream)
stored = target.put(name, buffered(hashing, BLOCK))
target.close()
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({
    "size": stored.size, "sent": hashing.size, "sha256": hashing.sha256, "vmhwm_kib": hwm,
    "parts": [[p.name, p.size, p.sha256] for p in stored.parts],
}))
"""


def expected_sha256() -> str:
    sha = hashlib.sha256()
    for block in generated(SIZE):
        sha.update(block)
    return sha.hexdigest()


def stream_to(s3: S3Server, kind: str, bucket: str, name: str) -> dict[str, object]:
    """Run the child; return its report."""
    env = tiffin_env(**s3.env(), PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, kind, bucket, name, str(SIZE), s3.endpoint],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{kind}: {SIZE} bytes, peak RSS {int(str(report['vmhwm_kib'])) / 1024:.0f} MB")
    return report


def object_sha256(s3: S3Server, bucket: str, key: str) -> tuple[int, str]:
    """Read KEY back from the server; return its size and sha256."""
    body = s3.client().get_object(Bucket=bucket, Key=key)["Body"]
    sha = hashlib.sha256()
    size = 0
    for chunk in body.iter_chunks(8 * MiB):
        sha.update(chunk)
        size += len(chunk)
    return size, sha.hexdigest()


def keys(s3: S3Server, bucket: str) -> dict[str, int]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


@pytest.fixture(scope="module")
def sha_of_stream() -> str:
    return expected_sha256()


@pytest.fixture
def big_bucket(s3_server: S3Server) -> Iterator[str]:
    name = s3_server.make_bucket(f"big-{uuid.uuid4().hex[:12]}")
    yield name
    client = s3_server.client()
    for key in keys(s3_server, name):
        client.delete_object(Bucket=name, Key=key)  # moto holds objects in memory
    client.delete_bucket(Bucket=name)


def test_s3_stores_more_than_5_gib_as_one_object_in_bounded_memory(
    s3_server: S3Server, big_bucket: str, sha_of_stream: str
) -> None:
    name = "big_2011-02-10_14:17:42_UTC.sql"
    report = stream_to(s3_server, "s3", big_bucket, name)
    assert report["size"] == report["sent"] == SIZE
    assert report["sha256"] == sha_of_stream and report["parts"] == []
    assert keys(s3_server, big_bucket) == {f"big/{name}": SIZE}
    assert object_sha256(s3_server, big_bucket, f"big/{name}") == (SIZE, sha_of_stream)
    assert int(str(report["vmhwm_kib"])) / 1024 < RSS_LIMIT_MB, report


def test_s3multi_stores_4_gib_chunks_whose_cat_is_the_stream_in_bounded_memory(
    s3_server: S3Server, big_bucket: str, sha_of_stream: str
) -> None:
    name = "big_2011-02-10_14:17:42_UTC.sql"
    report = stream_to(s3_server, "s3multi", big_bucket, name)
    assert report["size"] == report["sent"] == SIZE and report["sha256"] == sha_of_stream
    sizes = [CHUNK, SIZE - CHUNK]
    expected = {f"big/{name}/{name}.{i:02d}": size for i, size in enumerate(sizes)}
    assert keys(s3_server, big_bucket) == expected
    whole = hashlib.sha256()
    parts = report["parts"]
    assert isinstance(parts, list) and len(parts) == 2
    for (part, size, sha), key in zip(parts, sorted(expected), strict=True):
        assert key.endswith("/" + part) and size == expected[key]
        body = s3_server.client().get_object(Bucket=big_bucket, Key=key)["Body"]
        one = hashlib.sha256()
        for chunk in body.iter_chunks(8 * MiB):
            one.update(chunk)
            whole.update(chunk)
        assert one.hexdigest() == sha
    assert whole.hexdigest() == sha_of_stream
    assert int(str(report["vmhwm_kib"])) / 1024 < RSS_LIMIT_MB, report

"""S3MultiTarget against a real (moto) S3 server: the seed's numbered-chunk layout."""

from __future__ import annotations

import hashlib

import pytest

from tests.s3.conftest import Generated, MiB, options, url
from tests.servers.s3 import S3Server
from tiffin.errors import AlreadyExists, NotFound
from tiffin.targets import TARGETS
from tiffin.targets.s3multi import S3MultiTarget, chunk_index, chunk_suffix

NAME = "ramen_2011-02-10_14:17:42_UTC.sql.gz"


def keys(s3: S3Server, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", []))


def body(s3: S3Server, bucket: str, key: str) -> bytes:
    return s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def test_registry_names_s3multi_target() -> None:
    assert TARGETS["s3multi"].load() is S3MultiTarget


def test_23_mib_in_5_mib_chunks_is_five_objects_whose_cat_is_the_backup(
    s3_env: S3Server, bucket: str
) -> None:
    target = S3MultiTarget(url("s3multi", bucket), options(chunk_size=5 * MiB))
    data = Generated(23 * MiB)
    stored = target.put(NAME, data.reader())
    chunk_keys = [f"backups/db/{NAME}/{NAME}.0{i}" for i in range(5)]
    assert keys(s3_env, bucket) == chunk_keys
    chunks = [body(s3_env, bucket, k) for k in chunk_keys]
    assert [len(c) for c in chunks] == [5 * MiB] * 4 + [3 * MiB]
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == data.sha.hexdigest()
    assert stored.size == 23 * MiB
    assert [(p.name, p.size, p.sha256) for p in stored.parts] == [
        (f"{NAME}.0{i}", len(c), hashlib.sha256(c).hexdigest()) for i, c in enumerate(chunks)
    ]
    with target.open(NAME) as f:
        assert f.read() == b"".join(chunks)
    entry = target.stat(NAME)
    assert entry is not None and (entry.name, entry.size) == (NAME, 23 * MiB)


def test_big_chunks_stream_as_multipart_uploads(s3_env: S3Server, bucket: str) -> None:
    target = S3MultiTarget(
        url("s3multi", bucket), options(chunk_size=12 * MiB), first_part_size=5 * MiB
    )
    data = Generated(30 * MiB)
    stored = target.put(NAME, data.reader())
    assert [p.size for p in stored.parts] == [12 * MiB, 12 * MiB, 6 * MiB]
    head = s3_env.client().head_object(Bucket=bucket, Key=f"backups/db/{NAME}/{NAME}.00")
    assert head["ETag"].strip('"').endswith("-3")  # 5 + 5 + 2 MiB
    with target.open(NAME) as f:
        assert hashlib.sha256(f.read()).hexdigest() == data.sha.hexdigest()


def test_empty_stream_is_one_empty_chunk(s3_env: S3Server, bucket: str) -> None:
    target = S3MultiTarget(url("s3multi", bucket), options(chunk_size=MiB))
    stored = target.put(NAME, Generated(0).reader())
    assert keys(s3_env, bucket) == [f"backups/db/{NAME}/{NAME}.00"]
    assert stored.size == 0 and [p.size for p in stored.parts] == [0]
    with target.open(NAME) as f:
        assert f.read() == b""


def test_stream_ending_on_a_chunk_boundary_leaves_no_empty_chunk(
    s3_env: S3Server, bucket: str
) -> None:
    target = S3MultiTarget(url("s3multi", bucket), options(chunk_size=MiB))
    stored = target.put(NAME, Generated(2 * MiB).reader())
    assert [p.name for p in stored.parts] == [f"{NAME}.00", f"{NAME}.01"]


def test_manifest_is_a_plain_object_beside_the_chunks_and_list_shows_both(
    s3_env: S3Server, bucket: str
) -> None:
    target = S3MultiTarget(url("s3multi", bucket), options(chunk_size=MiB))
    target.put(NAME, Generated(3 * MiB + 5).reader())
    manifest = NAME + ".manifest.json"
    assert target.put(manifest, Generated(100).reader()).parts == ()
    assert f"backups/db/{manifest}" in keys(s3_env, bucket)
    assert sorted((e.name, e.size, e.partial) for e in target.list()) == [
        (NAME, 3 * MiB + 5, False),
        (manifest, 100, False),
    ]
    with pytest.raises(AlreadyExists):
        target.put(manifest, Generated(1).reader())


def test_existing_name_is_refused_before_reading(s3_env: S3Server, bucket: str) -> None:
    target = S3MultiTarget(url("s3multi", bucket), options(chunk_size=MiB))
    target.put(NAME, Generated(10).reader())
    untouched = Generated(10)
    with pytest.raises(AlreadyExists):
        target.put(NAME, untouched.reader())
    assert untouched.sent == 0


def test_failing_stream_leaves_no_chunk_and_no_upload(s3_env: S3Server, bucket: str) -> None:
    target = S3MultiTarget(
        url("s3multi", bucket), options(chunk_size=7 * MiB), first_part_size=5 * MiB
    )
    with pytest.raises(RuntimeError, match="the dump broke"):
        target.put(NAME, Generated(40 * MiB, fail_at=19 * MiB).reader())
    assert keys(s3_env, bucket) == []
    assert s3_env.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert target.list() == []


def test_remove_deletes_every_chunk_and_abandoned_uploads(s3_env: S3Server, bucket: str) -> None:
    target = S3MultiTarget(url("s3multi", bucket), options(chunk_size=MiB))
    target.put(NAME, Generated(3 * MiB).reader())
    client = s3_env.client()
    client.create_multipart_upload(Bucket=bucket, Key=f"backups/db/{NAME}/{NAME}.03")
    other = "other_2011-02-10_14:17:42_UTC.sql.gz"
    client.create_multipart_upload(Bucket=bucket, Key=f"backups/db/{other}/{other}.00")
    assert sorted((e.name, e.partial) for e in target.list()) == [
        (other, True),
        (NAME, False),
        (NAME, True),
    ]
    target.remove(NAME)
    assert keys(s3_env, bucket) == []
    assert [(e.name, e.partial) for e in target.list()] == [(other, True)]
    target.remove(other)
    assert target.list() == []
    target.remove(NAME)  # absent: no error
    assert target.stat(NAME) is None
    with pytest.raises(NotFound):
        target.open(NAME)


def test_objects_outside_the_layout_are_not_listed(s3_env: S3Server, bucket: str) -> None:
    client = s3_env.client()
    client.put_object(Bucket=bucket, Key="backups/db/folder/unrelated", Body=b"x")
    client.put_object(Bucket=bucket, Key="backups/db/sub/sub.00/deeper", Body=b"x")
    client.put_object(Bucket=bucket, Key="backups/elsewhere.sql.gz", Body=b"x")
    target = S3MultiTarget(url("s3multi", bucket), options(chunk_size=MiB))
    assert target.list() == []


def test_chunk_suffixes_are_gnu_splits_so_a_sorted_glob_cats_them_in_order() -> None:
    assert [chunk_suffix(i) for i in (0, 1, 89, 90, 989, 990)] == [
        "00",
        "01",
        "89",
        "9000",
        "9899",
        "990000",
    ]
    suffixes = [chunk_suffix(i) for i in range(20_000)]
    assert suffixes == sorted(suffixes)
    assert all(chunk_index(s) == i for i, s in enumerate(suffixes))
    assert [chunk_index(s) for s in ("90", "0000", "900", "9900")] == [None] * 4


def test_chunks_smaller_than_the_read_block_lose_nothing(s3_env: S3Server, bucket: str) -> None:
    target = S3MultiTarget(url("s3multi", bucket), options(chunk_size=64 * 1024))
    data = Generated(225_280)
    stored = target.put(NAME, data.reader())
    assert stored.size == 225_280
    assert [p.size for p in stored.parts] == [65536, 65536, 65536, 28672]
    with target.open(NAME) as f:
        assert hashlib.sha256(f.read()).hexdigest() == data.sha.hexdigest()

"""Fixtures of the S3 tests: this process's environment pointed at the moto server only."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.s3 import S3Server
from tiffin.engine.streams import IterReader, buffered
from tiffin.job import TargetOptions, TargetURL

MiB = 1 << 20
_buckets = itertools.count()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """The AWS variables of this process name the moto server and nothing else; HOME is a
    fresh folder, so no ~/.aws or ~/.s3cfg of the machine leaks in."""
    for name in list(os.environ):
        if name.upper().startswith(("AWS_", "BOTO_", "S3CMD_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def bucket(s3_env: S3Server) -> str:
    """A fresh, empty bucket."""
    return s3_env.make_bucket(f"tiffin-test-{os.getpid()}-{next(_buckets)}")


def url(kind: str, bucket: str, prefix: str = "backups/db") -> TargetURL:
    return TargetURL(kind, host=bucket, path=prefix)


def options(**kw: object) -> TargetOptions:
    return TargetOptions(**kw)  # type: ignore[arg-type]


class Generated:
    """SIZE pseudo-random bytes made block by block while read (never held whole), hashed as
    they go; FAIL_AT raises ERROR (a RuntimeError) once that many bytes were handed out."""

    def __init__(
        self,
        size: int,
        seed: int = 1,
        fail_at: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.size, self.seed, self.fail_at = size, seed, fail_at
        self.error = error or RuntimeError("the dump broke")
        self.sha = hashlib.sha256()
        self.sent = 0

    def blocks(self) -> Iterator[bytes]:
        rng = random.Random(self.seed)
        while self.sent < self.size:
            if self.fail_at is not None and self.sent >= self.fail_at:
                raise self.error
            block = rng.randbytes(min(MiB, self.size - self.sent))
            self.sha.update(block)
            self.sent += len(block)
            yield block

    def reader(self) -> io.BufferedReader:
        return buffered(IterReader(self.blocks()))

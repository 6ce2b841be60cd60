"""One S3 object per backup, streamed as a multipart upload of growing, buffered parts.

A dump's length is unknown until it ends, and S3 allows 10,000 parts. Part n (1-based) is
`part_size(n)`: FIRST_PART (8 MiB) doubled every PARTS_PER_STEP (700) parts, capped at
PART_CAP (1 GiB). With 8 MiB parts the first 5.5 GiB go in 8 MiB parts, up to 82 GiB in parts
of at most 64 MiB, and 10,000 parts hold 5,794 GiB (5,271 GiB from a 5 MiB first part), so
any first part from 5 MiB up reaches S3's 5 TiB object limit (tests/unit/test_part_schedule).

Memory: each part is held whole until S3 has it, so that a failed part can be sent again
(the live stream never can). At most IN_FLIGHT_PARTS (4) parts, the one being filled
included, and at most IN_FLIGHT_BYTES (256 MiB) are held, though always at least one part:
4 x 8 MiB for small dumps, 256 MiB up to 170 GiB, then one part of up to 1 GiB at a time.

Retries: botocore's standard mode sends a request again after network errors, throttling and
5xx answers; tiffin sends a part again when S3 found it damaged (BadDigest: every upload
carries the CRC-32 of its body in an x-amz-checksum-crc32 header, as boto3's own transfers
do, and a multipart upload is created with that algorithm, so S3 checks every part and
keeps their checksums). The header is computed here, not by botocore: botocore would send it
over HTTPS as an aws-chunked trailer, which many S3-compatible stores reject or store as
data. CRC-32 costs a tenth of MD5's CPU, and the moto server completes an upload of
checksummed parts in half the time.

Publishing: put_object and the completion carry If-None-Match: *, so S3 itself refuses to
replace an object that appeared meanwhile.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tiffin.catalog.naming import PARTIAL_SUFFIX
from tiffin.engine.streams import BLOCK, Reader
from tiffin.errors import AlreadyExists, NotFound, TargetError
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets.base import Entry, Stored
from tiffin.targets.s3config import (
    BodyReader,
    crc32_header,
    error_code,
    explain,
    knows_if_none_match,
    make_client,
    retried,
    timed_out,
    worth_resending,
)
from tiffin.targets.s3parts import (
    FIRST_PART,
    IN_FLIGHT_BYTES,
    IN_FLIGHT_PARTS,
    MAX_PART,
    MAX_PARTS,
    MIN_PART,
    PART_ATTEMPTS,
    PARTS_PER_STEP,
    _Window,
    part_size,
    read_part,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("tiffin")


def entry(name: str, size: int, mtime: float | None) -> Entry:
    """Return the Entry of an object named NAME; NAME.partial is NAME's partial leftover."""
    if name.endswith(PARTIAL_SUFFIX):
        return Entry(name[: -len(PARTIAL_SUFFIX)], size, mtime, partial=True)
    return Entry(name, size, mtime)


class S3Store:
    """The objects under s3://BUCKET/PREFIX and the streamed upload that S3Target and
    S3MultiTarget share."""

    retry_delay = 1.0

    def __init__(
        self,
        url: TargetURL,
        options: TargetOptions,
        *,
        first_part_size: int = FIRST_PART,
        parts_per_step: int = PARTS_PER_STEP,
    ) -> None:
        if not MIN_PART <= first_part_size <= MAX_PART or parts_per_step < 1:
            raise ValueError(f"first part size {first_part_size} is not from 5 MiB to 5 GiB")
        self.bucket = url.host
        self.prefix = url.path.strip("/")
        self.first_part_size = first_part_size
        self.parts_per_step = parts_per_step
        self.client: S3Client
        self.client, self.endpoint = make_client(options, pool=IN_FLIGHT_PARTS + 4)
        self.conditional = knows_if_none_match(self.client)
        self.last_part_sizes: tuple[int, ...] = ()
        self.hung = False
        # Contact S3 now, so that a missing bucket, refused credentials or an endpoint that
        # is not there are reported before any dump starts. (put() needs s3:ListBucket too:
        # without it, S3 answers a look-up of an absent key with 403, not 404.)
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.key(""), MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            self.client.close()
            raise self.explain(exc, "list") from exc

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def where(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}/{self.prefix}"

    def explain(self, exc: Exception, action: str, key: str = "") -> TargetError:
        # A store that does not answer in time hangs: cleaning up would wait as long again.
        self.hung = self.hung or timed_out(exc)
        return explain(exc, self.bucket, self.endpoint, f"{action} {self.where(key)}")

    def pages(self, operation: str, **kwargs: Any) -> Any:
        """Yield every page of a paginated listing under this bucket."""
        try:
            yield from self.client.get_paginator(operation).paginate(  # type: ignore[call-overload]
                Bucket=self.bucket, **kwargs
            )
        except (ClientError, BotoCoreError) as exc:
            raise self.explain(exc, "list", kwargs.get("Prefix", "")) from exc

    def uploads(self, prefix: str) -> list[tuple[str, float, str]]:
        """Return (key, start time, id) of every unfinished multipart upload under PREFIX."""
        try:
            pages = list(self.pages("list_multipart_uploads", Prefix=prefix))
        except TargetError as exc:
            # Stores and policies that do not allow listing uploads still allow backups.
            log.debug("cannot list the unfinished uploads under %s: %s", prefix, exc)
            return []
        ups = [up for page in pages for up in page.get("Uploads", ())]
        return [(up["Key"], up["Initiated"].timestamp(), up["UploadId"]) for up in ups]

    def abort_uploads(self, key: str, exact: bool) -> None:
        """Abort the unfinished multipart uploads of KEY (every key under KEY unless EXACT)."""
        for up_key, _, upload_id in self.uploads(key):
            if not exact or up_key == key:
                self.abort(up_key, upload_id)

    def abort(self, key: str, upload_id: str) -> None:
        """Abort one multipart upload; a failure is logged, not raised."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) != "NoSuchUpload":
                why = self.explain(exc, "abort the upload of", key)
                log.warning("could not abort the upload of %s (prune removes it): %s", key, why)

    def head(self, key: str, name: str | None = None) -> Entry | None:
        """Return KEY's entry (named NAME, else KEY), or None if it is not stored."""
        try:
            h = self.client.head_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self.explain(exc, "look up", key) from exc
        return Entry(name or key, h["ContentLength"], h["LastModified"].timestamp())

    def open_key(self, key: str, name: str) -> Reader:
        """Return a buffered reader of KEY. Raise NotFound (naming NAME) if it is absent."""
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                raise NotFound(f"no backup named {name} in {self.where()}") from None
            raise self.explain(exc, "read", key) from exc
        why = partial(self.explain, action="read", key=key)
        body = BodyReader(self.where(key), resp["Body"], resp["ContentLength"], why)
        return io.BufferedReader(body, BLOCK)

    def upload(self, key: str, reader: Reader, replace: bool = False) -> int:
        """Store READER's bytes to EOF as KEY, never replacing an object (unless REPLACE);
        return the size, checked against what S3 reports. On any failure nothing is left
        under KEY (with REPLACE: whatever S3 holds there is left) and the multipart upload is
        aborted (unless S3 stopped answering: it is then left, listed as partial, for prune).
        The sizes of the parts sent go to `last_part_sizes`."""
        self.last_part_sizes = ()
        self.hung = False
        first = read_part(reader, self.first_part_size)
        try:
            if len(first) < self.first_part_size:
                sizes = [len(first)]
                self._send(key, None, 0, first, replace=replace)
            else:
                sizes = self._multipart(key, first, reader, replace)
            total = sum(sizes)
            stored = self.head(key)
        except (KeyboardInterrupt, SystemExit):
            # Interrupted (Ctrl-C, SIGTERM) while S3 was storing KEY, or just after: it may
            # hold it all the same, and KEY (absent when the upload began) is ours to remove.
            if not replace:
                self.delete(key, quiet=True)
            raise
        if stored is None or stored.size != total:
            if not replace:
                self.delete(key, quiet=True)
            got = "nothing" if stored is None else f"{stored.size} bytes"
            raise TargetError(f"S3 holds {got} for {self.where(key)}; {total} were sent")
        self.last_part_sizes = tuple(sizes)
        return total

    def _multipart(
        self, key: str, first: bytearray, reader: Reader, replace: bool = False
    ) -> list[int]:
        try:
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm="CRC32"
            )["UploadId"]
        except (ClientError, BotoCoreError) as exc:
            raise self.explain(exc, "start an upload to", key) from exc
        window = _Window(IN_FLIGHT_PARTS, IN_FLIGHT_BYTES)
        failed = threading.Event()

        def part(number: int, data: bytearray, held: int) -> tuple[str, str]:
            try:
                crc = crc32_header(data)
                return self._send(key, upload_id, number, data, failed=failed, crc=crc), crc
            except BaseException:
                failed.set()
                raise
            finally:
                window.release(held)

        pool = ThreadPoolExecutor(IN_FLIGHT_PARTS, thread_name_prefix="tiffin-s3")
        futures: list[Future[tuple[str, str]]] = []
        sizes: list[int] = []
        try:
            buf: bytearray | None = first
            size = self.first_part_size
            window.acquire(size, failed)
            while buf:
                n = len(futures) + 1
                futures.append(pool.submit(part, n, buf, size))
                sizes.append(len(buf))
                if len(buf) < size:
                    break
                buf = None  # hold no reference to a part being sent
                if n == MAX_PARTS:
                    raise TargetError(f"the stream outgrew S3's {MAX_PARTS} parts for one object")
                size = part_size(n + 1, self.first_part_size, self.parts_per_step)
                window.acquire(size, failed)
                if failed.is_set():
                    window.release(size)
                    break
                buf = read_part(reader, size)
                if not buf:
                    window.release(size)
            sent = [f.result() for f in futures]  # the first failed part raises here
            parts: Any = [
                {"ETag": etag, "ChecksumCRC32": crc, "PartNumber": i}
                for i, (etag, crc) in enumerate(sent, 1)
            ]
            self._send(key, upload_id, 0, None, parts, replace=replace)
        except BaseException:
            failed.set()
            pool.shutdown(wait=True, cancel_futures=True)
            if self.hung:
                log.warning("the upload of %s is left for prune: S3 does not answer", key)
            else:
                self.abort(key, upload_id)
            raise
        finally:
            pool.shutdown(wait=True)
        return sizes

    def _send(
        self,
        key: str,
        upload_id: str | None,
        number: int,
        data: bytearray | None,
        parts: Any = None,
        failed: threading.Event | None = None,
        crc: str | None = None,
        replace: bool = False,
    ) -> str:
        """Send one buffered request (a whole small object, a part, or the completion) with
        retries; return the ETag. CRC: the body's checksum header, if already computed. A
        refusal to replace an existing KEY is AlreadyExists; REPLACE asks for none."""
        kw: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if self.conditional and not replace and (upload_id is None or data is None):
            kw["IfNoneMatch"] = "*"
        if data is not None:
            kw.update(Body=data, ChecksumAlgorithm="CRC32", ChecksumCRC32=crc or crc32_header(data))
        for attempt in range(1, PART_ATTEMPTS + 1):
            try:
                if upload_id is None:
                    r: Any = self.client.put_object(**kw)
                elif data is not None:
                    r = self.client.upload_part(UploadId=upload_id, PartNumber=number, **kw)
                else:
                    r = self.client.complete_multipart_upload(
                        UploadId=upload_id, MultipartUpload={"Parts": parts or []}, **kw
                    )
                return str(r.get("ETag", ""))
            except (ClientError, BotoCoreError) as exc:
                code = error_code(exc)
                if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    raise AlreadyExists(
                        f"{self.where(key)} appeared while writing; not overwritten"
                    ) from None
                if code == "NoSuchUpload" and data is None and retried(exc):
                    return ""  # botocore's first try did complete it; upload() checks the size
                if code == "NotImplemented" and self.conditional:
                    # A store without conditional writes: the look-up before put() stands.
                    self.conditional = False
                    return self._send(key, upload_id, number, data, parts, failed, crc, replace)
                last = attempt == PART_ATTEMPTS or (failed is not None and failed.is_set())
                if last or not worth_resending(exc):
                    what = f"send part {number} of" if number else "store"
                    raise self.explain(exc, what, key) from exc
                log.debug("retrying %s part %d after: %s", key, number, exc)
                time.sleep(self.retry_delay * attempt)
        raise AssertionError("unreachable")

    def delete(self, key: str, quiet: bool = False) -> None:
        """Delete KEY; deleting what is absent is no error. QUIET: log a failure, not raise."""
        if quiet and self.hung:
            log.warning("%s is left for prune: S3 does not answer", self.where(key))
            return
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            if not quiet:
                raise self.explain(exc, "delete", key) from exc
            log.warning("could not delete %s: %s", self.where(key), exc)

    def close(self) -> None:
        self.client.close()


class S3Target:
    """Backups as objects s3://BUCKET/PREFIX/NAME; see the module's docstring."""

    def __init__(self, url: TargetURL, options: TargetOptions, **tuning: int) -> None:
        """TUNING: first_part_size and parts_per_step of S3Store, for tests."""
        self.store = S3Store(url, options, **tuning)

    @property
    def last_part_sizes(self) -> tuple[int, ...]:
        """The sizes of the parts the last put() sent, in order."""
        return self.store.last_part_sizes

    def put(self, name: str, reader: Reader, replace: bool = False) -> Stored:
        s = self.store
        key = s.key(name)
        if not replace and s.head(key) is not None:
            raise AlreadyExists(f"{s.where(key)} exists already; tiffin never overwrites a backup")
        return Stored(s.upload(key, reader, replace))

    def open(self, name: str) -> Reader:
        return self.store.open_key(self.store.key(name), name)

    def list(self) -> list[Entry]:
        s = self.store
        entries: list[Entry] = []
        base = s.key("")
        for page in s.pages("list_objects_v2", Prefix=base, Delimiter="/"):
            for obj in page.get("Contents", ()):
                name = obj["Key"][len(base) :]
                if name:
                    entries.append(entry(name, obj["Size"], obj["LastModified"].timestamp()))
        for key, when, _ in s.uploads(base):
            name = key[len(base) :]
            if name and "/" not in name:
                entries.append(Entry(name, 0, when, partial=True))
        return entries

    def stat(self, name: str) -> Entry | None:
        return self.store.head(self.store.key(name), name)

    def remove(self, name: str) -> None:
        key = self.store.key(name)
        self.store.delete(key)
        self.store.abort_uploads(key, exact=True)

    def close(self) -> None:
        self.store.close()

"""How tiffin talks to S3: credentials, endpoint, client, error sentences, object bodies.

Credentials: the standard AWS chain (environment, ~/.aws, SSO, instance roles) first; if it
finds none, s3cmd's ~/.s3cfg, the file the seed document has users write with
`s3cmd --configure`. Endpoint: --endpoint-url, else AWS_ENDPOINT_URL(_S3), else the
s3cfg's host_base when it is not Amazon's. A secret is never printed, logged or put in a repr.
"""

from __future__ import annotations

import base64
import configparser
import io
import logging
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from tiffin import __version__
from tiffin.errors import TargetError
from tiffin.job import TargetOptions

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("tiffin")

AMAZON_HOSTS = ("s3.amazonaws.com", "amazonaws.com")
DEFAULT_REGION = "us-east-1"
# botocore's "standard" retry mode, counting the first try.
CLIENT_ATTEMPTS = 3
NO_CREDENTIALS = (
    "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
    "(or use ~/.aws/credentials), or run s3cmd --configure to write ~/.s3cfg"
)
# s3cmd's own names for regions it predates.
_S3CMD_LOCATIONS = {"US": "us-east-1", "EU": "eu-west-1", "": DEFAULT_REGION}


@dataclass(frozen=True)
class S3cfg:
    """The settings tiffin takes from an s3cmd config file."""

    path: str
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    access_token: str = field(default="", repr=False)
    host_base: str = ""
    use_https: bool = True
    bucket_location: str = ""

    @property
    def has_credentials(self) -> bool:
        return bool(self.access_key and self.secret_key)

    @property
    def endpoint_url(self) -> str | None:
        """Return the endpoint host_base names, or None when it is Amazon's own."""
        host = self.host_base.strip()
        if "://" in host:
            host = host.split("://", 1)[1]
        host = host.rstrip("/")
        if not host or host.split(":")[0].endswith(AMAZON_HOSTS):
            return None
        return ("https://" if self.use_https else "http://") + host

    @property
    def region(self) -> str:
        loc = self.bucket_location.strip()
        return _S3CMD_LOCATIONS.get(loc.upper(), loc)


def s3cfg_path() -> str:
    """Return the s3cmd config file's path: $S3CMD_CONFIG, else ~/.s3cfg."""
    return os.environ.get("S3CMD_CONFIG") or os.path.expanduser("~/.s3cfg")


def parse_s3cfg(text: str, path: str) -> S3cfg:
    """Given the text of an s3cmd config file, return its settings. Raise TargetError if it
    is not an INI file with a [default] section."""
    # s3cmd writes values such as "%(bucket)s.s3.amazonaws.com": no interpolation.
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise TargetError(f"{path} is not a valid s3cmd config file: {exc.message}") from None
    if not parser.has_section("default"):
        raise TargetError(f"{path} has no [default] section (write it with s3cmd --configure)")
    sec = parser["default"]
    return S3cfg(
        path=path,
        access_key=sec.get("access_key", "").strip(),
        secret_key=sec.get("secret_key", "").strip(),
        access_token=sec.get("access_token", "").strip(),
        host_base=sec.get("host_base", "").strip(),
        use_https=sec.get("use_https", "True").strip().lower() not in ("false", "no", "0", "off"),
        bucket_location=sec.get("bucket_location", "").strip(),
    )


def read_s3cfg() -> S3cfg | None:
    """Return the settings of the s3cmd config file, or None when there is none."""
    path = s3cfg_path()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"cannot read {path}: {exc}") from None
    return parse_s3cfg(text, path)


@dataclass(frozen=True)
class S3Access:
    """A resolved way in: the session holding the credentials, the endpoint (None: Amazon's
    own), the region, and where the credentials came from (for messages)."""

    session: boto3.session.Session = field(repr=False)
    endpoint_url: str | None
    region: str
    source: str


def resolve(options: TargetOptions) -> S3Access:
    """Given the target options, return how to reach S3. Raise TargetError if no credentials
    are found in the AWS chain nor in ~/.s3cfg, or a config file is unreadable."""
    try:
        session = boto3.session.Session()
        creds = session.get_credentials()
    except BotoCoreError as exc:
        raise TargetError(f"the AWS configuration is not usable: {exc}") from None
    s3cfg = read_s3cfg()
    source = "the AWS credential chain"
    region = session.region_name or (s3cfg.region if s3cfg else "") or DEFAULT_REGION
    if creds is None:
        if s3cfg is None or not s3cfg.has_credentials:
            raise TargetError(NO_CREDENTIALS)
        session = boto3.session.Session(
            aws_access_key_id=s3cfg.access_key,
            aws_secret_access_key=s3cfg.secret_key,
            aws_session_token=s3cfg.access_token or None,
            region_name=region,
        )
        source = s3cfg.path
    endpoint = (
        options.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or (s3cfg.endpoint_url if s3cfg else None)
    )
    return S3Access(session, endpoint or None, region, source)


def client_config(options: TargetOptions, custom_endpoint: bool, pool: int) -> Config:
    """Given the options, return the botocore Config: standard retries, timeouts from
    --timeout, path-style addressing for S3-compatible endpoints."""
    kwargs: dict[str, Any] = {
        "connect_timeout": options.timeout,
        "read_timeout": options.timeout,
        "retries": {"mode": "standard", "total_max_attempts": CLIENT_ATTEMPTS},
        "max_pool_connections": pool,
        "user_agent_extra": f"tiffin/{__version__}",
    }
    if custom_endpoint:
        kwargs["s3"] = {"addressing_style": "path"}
        # Many S3-compatible stores reject the aws-chunked trailers botocore >= 1.36 sends
        # its checksums in over HTTPS by default; tiffin sends a CRC-32 header instead.
        kwargs["request_checksum_calculation"] = "when_required"
        kwargs["response_checksum_validation"] = "when_required"
    try:
        return Config(**kwargs)
    except TypeError:  # a botocore older than 1.36 knows no checksum settings
        kwargs.pop("request_checksum_calculation", None)
        kwargs.pop("response_checksum_validation", None)
        return Config(**kwargs)


def make_client(options: TargetOptions, pool: int = 10) -> tuple[S3Client, str]:
    """Given the target options, return an S3 client and the endpoint it talks to.
    Raise TargetError if no credentials are found or the endpoint is malformed."""
    access = resolve(options)
    config = client_config(options, access.endpoint_url is not None, pool)
    try:
        client = access.session.client(
            "s3",
            endpoint_url=access.endpoint_url,
            region_name=access.region,
            verify=False if options.insecure else None,
            config=config,
        )
    except (BotoCoreError, ValueError) as exc:
        where = access.endpoint_url or "the default S3 endpoint"
        raise TargetError(f"cannot use the S3 endpoint {where}: {exc}") from None
    log.debug("S3 credentials from %s, endpoint %s", access.source, client.meta.endpoint_url)
    if options.insecure:
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return client, client.meta.endpoint_url


_CREDENTIAL_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "403",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
        "AccountProblem",
    }
)
# botocore's standard retry mode already sends a request again (its body is a buffer) after
# network errors, throttling and 5xx answers, with exponential backoff and jitter. These are
# the refusals it gives up on at once, though the same bytes sent again may well pass: the
# body was damaged or cut on the way.
_RESEND_CODES = frozenset({"BadDigest", "IncompleteBody", "XAmzContentSHA256Mismatch"})
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def error_code(exc: BaseException) -> str:
    """Return the S3 error code of a ClientError ("NoSuchKey", "404", ...), else ""."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def timed_out(exc: BaseException) -> bool:
    """Return whether EXC is a request the store did not answer within --timeout."""
    detail = str(getattr(exc, "kwargs", {}).get("error", "")) or str(exc)
    return isinstance(exc, ConnectTimeoutError | ReadTimeoutError) or "timed out" in detail


def _reason(exc: BaseException) -> str:
    """Return the cause of a connection failure in a few words."""
    if timed_out(exc):
        return "no answer in time (--timeout)"
    detail = str(getattr(exc, "kwargs", {}).get("error", "")) or str(exc)
    m = _ERRNO.search(detail)
    if m:
        return m.group(1).strip().rstrip(".")
    return "the connection was closed" if isinstance(exc, ConnectionClosedError) else detail


def knows_if_none_match(client: S3Client) -> bool:
    """Return whether this botocore can send If-None-Match: * with an upload (from 1.35.x),
    so that S3 itself refuses to replace an object that appeared meanwhile."""
    model = client.meta.service_model
    ops = ("PutObject", "CompleteMultipartUpload")
    shapes = [model.operation_model(op).input_shape for op in ops]
    return all(shape is not None and "IfNoneMatch" in shape.members for shape in shapes)


def retried(exc: ClientError | BotoCoreError) -> bool:
    """Return whether botocore had sent the failed request more than once."""
    meta = exc.response.get("ResponseMetadata", {}) if isinstance(exc, ClientError) else {}
    return int(meta.get("RetryAttempts", 0) or 0) > 0


def crc32_header(data: bytes | bytearray) -> str:
    """Return the x-amz-checksum-crc32 header of a request body: S3 refuses a body damaged on
    the way (base64 of the big-endian CRC-32)."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def worth_resending(exc: BaseException) -> bool:
    """Given an error botocore did not retry, return whether to send the same bytes again."""
    return error_code(exc) in _RESEND_CODES


def explain(exc: BaseException, bucket: str, endpoint: str, doing: str) -> TargetError:
    """Given an error of a request to ENDPOINT while DOING (e.g. "read s3://b/k"), return the
    one-sentence TargetError a user reads."""
    code = error_code(exc)
    if code == "NoSuchBucket":
        return TargetError(
            f"the bucket {bucket} does not exist (create it with: s3cmd mb s3://{bucket})"
        )
    if code in _CREDENTIAL_CODES:
        return TargetError(f"S3 refused the credentials for bucket {bucket} ({code})")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return TargetError(NO_CREDENTIALS)
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return TargetError(f"cannot reach S3 at {endpoint}: {_reason(exc)}")
    if isinstance(exc, ClientError):
        msg = exc.response.get("Error", {}).get("Message") or code
        return TargetError(f"S3 at {endpoint} refused to {doing}: {msg} ({code})")
    return TargetError(f"S3 at {endpoint} failed to {doing}: {exc}")


class BodyReader(io.RawIOBase):
    """An object's streamed body (named WHERE, LENGTH bytes long): a failure is raised as
    EXPLAIN(exc) and a short body as TargetError, never as EOF."""

    def __init__(
        self, where: str, body: Any, length: int, explain: Callable[[Exception], TargetError]
    ) -> None:
        super().__init__()
        self._where, self._body, self._length, self._explain = where, body, length, explain
        self._got = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        out = memoryview(b)
        try:
            data = self._body.read(len(out)) if self._got < self._length else b""
        except IncompleteReadError:
            data = b""
        except (BotoCoreError, OSError) as exc:
            raise self._explain(exc) from exc
        n = len(data)
        if not n and len(out) and self._got != self._length:
            raise TargetError(f"{self._where} ended after {self._got} of {self._length} bytes")
        out[:n] = data
        self._got += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()

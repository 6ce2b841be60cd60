"""Where S3 credentials and the endpoint come from: the AWS chain, else s3cmd's ~/.s3cfg."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from tests.s3.conftest import Generated, options, url
from tests.servers.s3 import S3Server
from tiffin.errors import TargetError
from tiffin.targets.s3 import S3Target
from tiffin.targets.s3config import explain, parse_s3cfg

S3CFG = """[default]
access_key = {key}
secret_key = {secret}
bucket_location = US
host_base = {host}
host_bucket = %(bucket)s.{host}
use_https = {https}
signature_v2 = False
"""


def write_s3cfg(home: Path, host: str, https: bool = False, key: str = "s3cfg-key") -> Path:
    path = home / ".s3cfg"
    path.write_text(S3CFG.format(key=key, secret="s3cfg-secret", host=host, https=https))
    path.chmod(0o600)
    return path


def drop_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def test_s3cfg_credentials_and_endpoint_work_without_aws_variables(
    s3_env: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_aws_env(monkeypatch)
    write_s3cfg(Path(os.environ["HOME"]), f"{s3_env.host}:{s3_env.port}")
    target = S3Target(url("s3", bucket), options())
    assert target.store.endpoint == s3_env.endpoint
    data = Generated(1000)
    assert target.put("via-s3cfg", data.reader()).size == 1000
    assert [e.name for e in target.list()] == ["via-s3cfg"]


def test_aws_chain_wins_over_s3cfg(
    s3_env: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The s3cfg names an endpoint nobody listens on: the AWS_ENDPOINT_URL must be used.
    write_s3cfg(Path(os.environ["HOME"]), "127.0.0.1:9")
    target = S3Target(url("s3", bucket), options())
    assert target.store.endpoint == s3_env.endpoint
    assert target.list() == []


def test_endpoint_option_wins_over_environment(
    s3_env: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    target = S3Target(url("s3", bucket), options(endpoint_url=s3_env.endpoint))
    assert target.list() == []


def test_no_credentials_anywhere_names_both_places(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_aws_env(monkeypatch)
    with pytest.raises(TargetError) as err:
        S3Target(url("s3", "b"), options())
    assert "AWS_ACCESS_KEY_ID" in str(err.value) and "~/.s3cfg" in str(err.value)


def test_unreachable_endpoint_is_one_sentence(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(TargetError) as err:
        S3Target(url("s3", "b"), options())
    assert str(err.value) == "cannot reach S3 at http://127.0.0.1:9: Connection refused"


def test_s3cfg_parsing() -> None:
    cfg = parse_s3cfg(S3CFG.format(key="k", secret="s", host="s3.amazonaws.com", https=True), "f")
    assert (cfg.access_key, cfg.secret_key, cfg.region) == ("k", "s", "us-east-1")
    assert cfg.endpoint_url is None  # Amazon's own
    assert "secret" not in repr(cfg) and "'s'" not in repr(cfg)
    other = parse_s3cfg(S3CFG.format(key="k", secret="s", host="minio.lan:9000", https=False), "f")
    assert other.endpoint_url == "http://minio.lan:9000"
    tls = parse_s3cfg(
        S3CFG.format(key="k", secret="s", host="nyc3.digitaloceanspaces.com", https=True), "f"
    )
    assert tls.endpoint_url == "https://nyc3.digitaloceanspaces.com"
    with pytest.raises(TargetError, match="no \\[default\\] section"):
        parse_s3cfg("[other]\naccess_key = k\n", "/h/.s3cfg")


def test_error_sentences() -> None:
    def client_error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "m"}}, "PutObject")

    assert str(explain(client_error("AccessDenied"), "b", "http://e", "store x")) == (
        "S3 refused the credentials for bucket b (AccessDenied)"
    )
    assert str(explain(client_error("SignatureDoesNotMatch"), "b", "http://e", "x")).startswith(
        "S3 refused the credentials for bucket b"
    )
    assert str(explain(client_error("NoSuchBucket"), "b", "http://e", "x")) == (
        "the bucket b does not exist (create it with: s3cmd mb s3://b)"
    )
    down = EndpointConnectionError(endpoint_url="http://e/b/k")
    assert str(explain(down, "b", "http://e", "x")).startswith("cannot reach S3 at http://e: ")

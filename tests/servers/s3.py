"""A throwaway S3 endpoint: moto's server in a child process."""

from __future__ import annotations

import os
import signal
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from .base import Server
from .env import scrubbed_environ
from .ports import free_port
from .proc import require_module

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3Server"]

ACCESS_KEY = "testing"
SECRET_KEY = "testing-secret"
REGION = "us-east-1"

# Talk to the loopback directly, whatever proxies the machine has configured.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _proxy_configured() -> bool:
    return any(k.upper().endswith("_PROXY") and k.upper() != "NO_PROXY" for k in os.environ)


class S3Server(Server):
    """``python -m moto.server`` on 127.0.0.1:port.

    moto accepts any credentials and keeps objects in memory: :meth:`restart`
    and :meth:`reset` lose every bucket.
    """

    name = "s3"

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.port = port or free_port()
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _start(self) -> None:
        for module in ("moto", "flask", "flask_cors"):
            require_module(module)
        argv = [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
        self._spawn(argv, stop_signal=signal.SIGTERM, cwd=self.workdir, env=scrubbed_environ())
        self._wait_until(self._ready, "GET /moto-api/ 200", timeout=60)

    def _request(self, path: str, method: str = "GET") -> int:
        req = urllib.request.Request(self.endpoint + path, method=method, data=None)
        with _NO_PROXY.open(req, timeout=5) as resp:
            return int(resp.status)

    def _ready(self) -> bool:
        try:
            return self._request("/moto-api/") == 200
        except (OSError, urllib.error.URLError):
            return False

    def reset(self) -> None:
        """Forget every bucket and object (POST /moto-api/reset)."""
        self._request("/moto-api/reset", method="POST")

    def env(self) -> dict[str, str]:
        """Environment variables for a child process that talks only to this
        server. Start from a scrubbed environment (tests.servers.env.tiffin_env):
        any ``*_PROXY`` variable must be dropped (NO_PROXY is set here)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def client(self, **config: Any) -> S3Client:
        """A boto3 S3 client for this server (no proxy, explicit credentials)."""
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )
        if _proxy_configured():
            # An empty proxy URL makes botocore connect directly (it then sends
            # absolute-form request targets, which moto accepts).
            config.setdefault("proxies", {"http": "", "https": ""})
        cfg = Config(**config)
        return session.client("s3", endpoint_url=self.endpoint, config=cfg)

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name``; return the name."""
        self.client().create_bucket(Bucket=name)
        return name

"""The Prometheus stack from Debian's packages, each on 127.0.0.1 on a free port, each
stopped by the PID the suite started: a Pushgateway, a node_exporter with only its textfile
collector (reading a folder of the suite's own), and a Prometheus that scrapes both every
second with `honor_labels: true` (as docs say a user must, for the series' own `job`).
"""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .base import Server
from .env import scrubbed_environ
from .ports import free_port
from .proc import require_executable

__all__ = ["NodeExporter", "Prometheus", "Pushgateway"]

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str, timeout: float = 5) -> bytes:
    with _NO_PROXY.open(url, timeout=timeout) as resp:
        return bytes(resp.read())


class _HTTPServer(Server):
    ready_path = "/-/ready"

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _ready(self) -> bool:
        try:
            _get(self.url + self.ready_path)
            return True
        except (OSError, urllib.error.URLError):
            return False


class Pushgateway(_HTTPServer):
    name = "pushgateway"

    def _start(self) -> None:
        exe = require_executable("prometheus-pushgateway")
        argv = [exe, f"--web.listen-address={self.host}:{self.port}"]
        self._spawn(argv, stop_signal=signal.SIGTERM, cwd=self.workdir, env=scrubbed_environ())
        self._wait_until(self._ready, "GET /-/ready", timeout=60)


class NodeExporter(_HTTPServer):
    """node_exporter with the textfile collector only, reading `self.textfiles`."""

    name = "node-exporter"
    ready_path = "/metrics"

    def __init__(self) -> None:
        super().__init__()
        self.textfiles = self.workdir / "textfiles"
        self.textfiles.mkdir()

    def _start(self) -> None:
        exe = require_executable("prometheus-node-exporter")
        argv = [
            exe,
            f"--web.listen-address={self.host}:{self.port}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={self.textfiles}",
        ]
        self._spawn(argv, stop_signal=signal.SIGTERM, cwd=self.workdir, env=scrubbed_environ())
        self._wait_until(self._ready, "GET /metrics", timeout=60)


class Prometheus(_HTTPServer):
    """Prometheus scraping TARGETS ({scrape job: host:port}) every second."""

    name = "prometheus"

    def __init__(self, targets: dict[str, str]) -> None:
        super().__init__()
        self.targets = targets

    def _start(self) -> None:
        exe = require_executable("prometheus")
        jobs = [
            {
                "job_name": name,
                "honor_labels": True,
                "static_configs": [{"targets": [address]}],
            }
            for name, address in self.targets.items()
        ]
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}}
        config["scrape_configs"] = jobs  # type: ignore[assignment]
        path = self.workdir / "prometheus.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        argv = [
            exe,
            f"--config.file={path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}",
            "--log.level=warn",
        ]
        self._spawn(argv, stop_signal=signal.SIGTERM, cwd=self.workdir, env=scrubbed_environ())
        self._wait_until(self._ready, "GET /-/ready", timeout=90)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Given a PromQL expression, return the instant vector's results ({metric, value})."""
        raw = _get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        answer = json.loads(raw)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def wait_for(self, expr: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Given a PromQL expression, poll until it has a result; return it. Fail after
        TIMEOUT seconds, showing what the targets look like."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.query(expr)
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        if not found:
            targets = _get(f"{self.url}/api/v1/targets").decode()
            raise AssertionError(f"no result for {expr} in {timeout} s; targets: {targets}")
        return found

"""`--notify URL` (SPEC §7): the report goes through Apprise on success, warning and failure,
without credentials; an endpoint that fails is a WARNING line and never a failed backup.
The endpoint is this test's own HTTP server behind Apprise's `json://` service."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.helpers import tiffin

SECRET = "np-Wq72-never-shown"


class Sink(ThreadingHTTPServer):
    """Keeps each request's path, Authorization header and JSON body; answers STATUS."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.got: list[tuple[str, str, dict[str, Any]]] = []
        self.status = 200

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: Sink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.got.append(
            (self.path, self.headers.get("Authorization", ""), json.loads(body or b"{}"))
        )
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_the_report_is_sent_on_success_warning_and_failure(sink, tmp_path, tiffin_env):
    data, store = tmp_path / "data", tmp_path / "store"
    data.mkdir()
    (data / "big.bin").write_bytes(bytes(range(256)) * 400)
    (data / "small.txt").write_text("x")
    url = f"json://tiffin:{SECRET}@127.0.0.1:{sink.port}/hook"
    args = ["backup", "data", "local", str(store), "--dir", str(data), "--label", "shop"]
    args += ["--notify", url, "--min-ratio", "0.9"]
    env = tiffin_env()

    ok = tiffin(args, env)
    (data / "big.bin").unlink()  # the next backup is much smaller: a warning
    warned = tiffin(args, env)
    shutil.rmtree(data)  # and the one after fails
    failed = tiffin(args, env, expect=1)

    assert [body["type"] for _, _, body in sink.got] == ["success", "warning", "failure"]
    assert all(path == "/hook" for path, _, _ in sink.got)
    assert all(auth.startswith("Basic ") for _, auth, _ in sink.got)  # the password went there
    titles = [body["title"] for _, _, body in sink.got]
    assert titles == [f"Backup result for shop: {s}" for s in ("OK", "WARNING", "FAILED")]
    first, second, third = (body["message"] for _, _, body in sink.got)
    assert ok.stdout.splitlines()[0] in first
    assert f"Target: file://{store} (credentials removed)" in first
    assert "WARNING: this backup" in second and warned.stdout.splitlines()[0] in second
    assert "FAILED" in third and failed.stderr.strip().splitlines()[0] in third
    for text in (first, second, third, ok.stdout, warned.stdout, failed.stdout, failed.stderr):
        assert SECRET not in text


def test_a_drill_sends_its_report_too(sink, tmp_path, tiffin_env):
    data, store = tmp_path / "data", tmp_path / "store"
    data.mkdir()
    (data / "a").write_text("a" * 1000)
    env = tiffin_env(HOSTNAME="drillhost")
    tiffin(["backup", "data", "local", str(store), "--dir", str(data)], env)
    hook = f"json://127.0.0.1:{sink.port}/"
    r = tiffin(["drill", "local", str(store), "latest", "--into", "dir", "--notify", hook], env)
    [(_, _, body)] = sink.got
    assert body["type"] == "success"
    assert body["title"] == "Drill result for drillhost: OK"
    assert r.stdout.splitlines()[0] in body["message"]


def test_a_failed_binlog_archive_is_notified(sink, mariadb, tmp_path, tiffin_env):
    env = tiffin_env(**mariadb.client_env())
    hook = f"json://127.0.0.1:{sink.port}/"
    args = ["binlog", "local", str(tmp_path / "b"), *mariadb.conn_args(), "--notify", hook]
    r = tiffin(args, env, expect=1)  # the session server keeps no binary logs
    [(_, _, body)] = sink.got
    assert body["type"] == "failure" and "Binlog archive result for" in body["title"]
    assert "binary logging is off" in body["message"] and "binary logging is off" in r.stderr

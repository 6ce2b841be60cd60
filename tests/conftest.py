"""Shared fixtures: real servers on 127.0.0.1, started lazily once per session.

Server fixtures (session scope, started on first use, stopped at session end):
``mariadb``, ``postgres``, ``sshd``, ``ftp_server``, ``ftps_server``, ``s3_server``,
``smtp_server``, ``smtp_tls_server``, ``pushgateway``, ``node_exporter``, ``prometheus``;
plus ``certs`` (test CA + server cert).
Function scope: ``clean_env`` (scrubbed environment dict with a fresh HOME) and
``tiffin_env`` (``tiffin_env(**extra) -> dict`` with the same HOME).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import FrameType
from typing import TypeVar

import pytest

from tests.servers import env as server_env
from tests.servers.base import Server
from tests.servers.certs import CertPaths, make_certs
from tests.servers.ftp import FTPServer
from tests.servers.mariadb import MariaDB
from tests.servers.postgres import Postgres
from tests.servers.proc import LOG_TAIL
from tests.servers.prometheus import NodeExporter, Prometheus, Pushgateway
from tests.servers.s3 import S3Server
from tests.servers.smtp import TEST_AUTH, SMTPServer
from tests.servers.sshd import SSHServer

S = TypeVar("S", bound=Server)


# pytest does no teardown on SIGTERM: turn it into KeyboardInterrupt, so a CI
# time-out still runs the fixture finalizers and stops every server.
def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _sigterm)

# Clients in this process (boto3, ftplib, ...) must never go through a proxy
# to reach the loopback servers.
for _var in ("NO_PROXY", "no_proxy"):
    _hosts = [h for h in os.environ.get(_var, "").split(",") if h]
    os.environ[_var] = ",".join([*_hosts, "127.0.0.1", "localhost"])

_session_servers: list[Server] = []


def pytest_report_header() -> str:
    """Name the Python the suite (and the tiffin it runs) proves, first thing in the log."""
    return f"tiffin runs on: Python {sys.version.split()[0]} ({os.path.realpath(sys.executable)})"


def _serve(server: S) -> Generator[S, None, None]:
    """Start ``server``, hand it to the tests, stop it and remove its files."""
    try:
        server.start()
        _session_servers.append(server)
        yield server
    finally:
        if server in _session_servers:
            _session_servers.remove(server)
        server.close()


@pytest.fixture(autouse=True)
def _heal_session_servers() -> Iterator[None]:
    """After each test, resume a server left paused and restart one left stopped."""
    yield
    for server in list(_session_servers):
        server.resume()
        if not server.running:
            server.start()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the log tail of every server a failing test used to its report."""
    report = yield
    if report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            if isinstance(value, Server):
                report.sections.append((f"{name} log", value.log_text()[-LOG_TAIL:]))
    return report


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertPaths:
    """Test CA (``ca_file``) and a server cert/key for 127.0.0.1 and localhost."""
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def mariadb() -> Generator[MariaDB, None, None]:
    yield from _serve(MariaDB())


@pytest.fixture(scope="session")
def postgres() -> Generator[Postgres, None, None]:
    yield from _serve(Postgres())


@pytest.fixture(scope="session")
def sshd() -> Generator[SSHServer, None, None]:
    yield from _serve(SSHServer())


@pytest.fixture(scope="session")
def ftp_server() -> Generator[FTPServer, None, None]:
    yield from _serve(FTPServer())


@pytest.fixture(scope="session")
def ftps_server(certs: CertPaths) -> Generator[FTPServer, None, None]:
    yield from _serve(FTPServer(tls=True, certs=certs))


@pytest.fixture(scope="session")
def s3_server() -> Generator[S3Server, None, None]:
    yield from _serve(S3Server())


@pytest.fixture(scope="session")
def smtp_server() -> Generator[SMTPServer, None, None]:
    """Plain SMTP, no STARTTLS, no AUTH."""
    yield from _serve(SMTPServer())


@pytest.fixture(scope="session")
def smtp_tls_server(certs: CertPaths) -> Generator[SMTPServer, None, None]:
    """STARTTLS required, AUTH LOGIN/PLAIN with :data:`TEST_AUTH`."""
    yield from _serve(SMTPServer(starttls=True, auth=TEST_AUTH, certs=certs))


@pytest.fixture(scope="session")
def pushgateway() -> Generator[Pushgateway, None, None]:
    yield from _serve(Pushgateway())


@pytest.fixture(scope="session")
def node_exporter() -> Generator[NodeExporter, None, None]:
    """node_exporter's textfile collector only, reading ``node_exporter.textfiles``."""
    yield from _serve(NodeExporter())


@pytest.fixture(scope="session")
def prometheus(
    pushgateway: Pushgateway, node_exporter: NodeExporter
) -> Generator[Prometheus, None, None]:
    """Prometheus scraping ``pushgateway`` and ``node_exporter`` every second."""
    targets = {
        "node": f"127.0.0.1:{node_exporter.port}",
        "pushgateway": f"127.0.0.1:{pushgateway.port}",
    }
    yield from _serve(Prometheus(targets))


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """os.environ without proxies/AWS_*/TIFFIN_*/PG*/MYSQL*..., HOME = fresh dir."""
    return server_env.tiffin_env(home=tmp_path / "home")


@pytest.fixture
def tiffin_env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """``tiffin_env(**extra)``: like ``clean_env`` plus ``extra`` variables."""

    def make(**extra: str) -> dict[str, str]:
        return server_env.tiffin_env(home=tmp_path / "home", **extra)

    return make


@pytest.fixture(autouse=True)
def _children_allowed() -> None:
    """Each test is a new run: tiffin.cli.main, called in this process by an earlier test,
    ended by refusing new children (tiffin.engine.process.end) as tiffin does before it exits."""
    from tiffin.engine import process

    process.begin()

"""A throwaway SMTP server (aiosmtpd in a child process) that keeps every message."""

from __future__ import annotations

import email
import email.policy
import json
import signal
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from .base import Server
from .certs import CertPaths, make_certs
from .env import scrubbed_environ
from .ports import free_port
from .proc import ServerError, require_module

__all__ = ["TEST_AUTH", "SMTPServer"]

MAIN = Path(__file__).with_name("smtpd_main.py")
TEST_AUTH = ("tiffin", "Smtp-S3cret-pw")  # used by the smtp_tls_server fixture


class SMTPServer(Server):
    """aiosmtpd on 127.0.0.1:port; each received message is stored in ``maildir``.

    ``starttls=True``: STARTTLS offered and required, certificate signed by
    ``ca_file``. ``auth=(user, password)``: AUTH LOGIN/PLAIN, allowed without TLS
    only when ``starttls`` is False.
    """

    name = "smtpd"

    def __init__(
        self,
        starttls: bool = False,
        auth: tuple[str, str] | None = None,
        certs: CertPaths | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__()
        self.port = port or free_port()
        self.starttls = starttls
        self.auth = auth
        self.user: str | None = auth[0] if auth else None
        self.password: str | None = auth[1] if auth else None
        self.maildir: Path = self.workdir / "maildir"
        self.maildir.mkdir()
        self.certs: CertPaths | None = None
        if starttls:
            self.certs = certs or make_certs(self.workdir / "certs")
        self.ca_file: Path | None = self.certs.ca_file if self.certs else None

    def _start(self) -> None:
        require_module("aiosmtpd")
        argv = [sys.executable, str(MAIN), "--host", self.host, "--port", str(self.port)]
        argv += ["--maildir", str(self.maildir)]
        if self.certs is not None:
            argv += ["--starttls", "--certfile", str(self.certs.cert_file)]
            argv += ["--keyfile", str(self.certs.key_file)]
        if self.auth is not None:
            argv += ["--auth-user", self.auth[0], "--auth-password", self.auth[1]]
        self._spawn(argv, stop_signal=signal.SIGTERM, cwd=self.workdir, env=scrubbed_environ())
        self._wait_port(timeout=30)

    # -- received mail -------------------------------------------------------------
    def _files(self) -> list[Path]:
        return sorted(self.maildir.glob("[0-9]*.eml"))

    def raw_messages(self) -> list[bytes]:
        """The received messages as the exact bytes sent after DATA, oldest first."""
        return [p.read_bytes() for p in self._files()]

    def messages(self) -> list[EmailMessage]:
        """The received messages, parsed with ``email.policy.default``, oldest first.

        Line endings are turned from the wire's CRLF into LF first, so
        ``get_content()`` of a text part reads like the text that was sent.
        """
        return [
            email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
            for raw in self.raw_messages()
        ]

    def envelopes(self) -> list[dict[str, Any]]:
        """Envelope of each message: mail_from, rcpt_tos, tls, authenticated, peer."""
        return [json.loads(p.with_suffix(".json").read_text()) for p in self._files()]

    def wait_for(self, n: int = 1, timeout: float = 10) -> list[EmailMessage]:
        """Wait until at least ``n`` messages arrived; return all messages."""
        deadline = time.monotonic() + timeout
        while len(self._files()) < n:
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{len(self._files())} message(s) after {timeout}s, expected {n}\n"
                    + self._tail()
                )
            time.sleep(0.05)
        return self.messages()

    def clear(self) -> None:
        """Forget every received message."""
        for path in self.maildir.iterdir():
            path.unlink()

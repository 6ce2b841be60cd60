"""aiosmtpd server for the tests: stores each message as raw RFC 822 bytes.

``python smtpd_main.py --port P --maildir DIR [--starttls --certfile C --keyfile K]
[--auth-user U --auth-password P]``; stops on SIGTERM. Message N is written to
``DIR/<time_ns>.eml`` (atomically) with its envelope in ``<time_ns>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import ssl
import sys
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


class Store:
    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or envelope.content or b""
        raw = data if isinstance(data, bytes) else data.encode()
        stem = f"{time.time_ns():020d}"
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
            "peer": list(session.peer) if session.peer else None,
        }
        (self.maildir / f".{stem}.json").write_text(json.dumps(meta))
        (self.maildir / f".{stem}.eml").write_bytes(raw)
        os.replace(self.maildir / f".{stem}.json", self.maildir / f"{stem}.json")
        os.replace(self.maildir / f".{stem}.eml", self.maildir / f"{stem}.eml")
        return "250 Message accepted for delivery"


class Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        ):
            return AuthResult(success=True, auth_data=auth_data)
        # handled=False lets aiosmtpd answer 535; anything else hangs the client.
        return AuthResult(success=False, handled=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--starttls", action="store_true")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    parser.add_argument("--auth-user")
    parser.add_argument("--auth-password")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )

    params: dict[str, Any] = {"data_size_limit": 64 * 1024 * 1024}
    if args.starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
        params |= {"tls_context": context, "require_starttls": True}
    if args.auth_user is not None:
        params["authenticator"] = Authenticator(args.auth_user, args.auth_password or "")
    # AUTH over plain text only when the server offers no STARTTLS at all; no
    # AUTH advertised on a plain connection when no credentials are configured.
    params["auth_require_tls"] = args.starttls or args.auth_user is None

    # Signals go to the main thread only, which waits for them below.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    controller = Controller(
        Store(Path(args.maildir)),
        hostname=args.host,
        port=args.port,
        server_hostname="tiffin-test-smtpd",
        **params,
    )
    controller.start()
    logging.info("smtpd listening on %s:%s %s", args.host, args.port, sorted(params))
    sig = signal.sigwait({signal.SIGTERM, signal.SIGINT})
    logging.info("signal %s: stopping", sig)
    controller.stop()


if __name__ == "__main__":
    main()

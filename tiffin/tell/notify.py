"""Telling someone else: the report by e-mail (SMTP or the local sendmail) and dead-man pings.

Nothing here decides what is said (report.py does) or whether a failure matters: every
function raises NotifyError, and the caller notes it without changing the job's outcome.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from tiffin.engine import process
from tiffin.errors import TiffinError, UsageError
from tiffin.job import redact_url_text
from tiffin.urls import host_text, split_url

if TYPE_CHECKING:  # the mail and HTTP modules are loaded when a mail or a ping is sent
    from email.message import EmailMessage

SMTP_PORTS = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}
SENDMAIL_DIRS = ("/usr/sbin", "/usr/lib")
MAIL_TIMEOUT = 30.0
PING_TIMEOUT = 10.0
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\Z")


class NotifyError(TiffinError):
    """A mail or a ping could not be sent; str() says why, without any password."""


@dataclass(frozen=True)
class SmtpSettings:
    scheme: str
    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def redacted(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{self.scheme}://{user}{host_text(self.host)}:{self.port}"


def parse_smtp_url(url: str) -> SmtpSettings:
    """Given TIFFIN_SMTP_URL (smtp://, smtps:// or smtp+starttls://, with USER:PASSWORD@
    URL-encoded if needed), return its settings. Raise UsageError if it is malformed."""
    parts = split_url(url.strip(), "TIFFIN_SMTP_URL")
    scheme = parts.scheme
    if scheme not in SMTP_PORTS:
        raise UsageError(
            f"TIFFIN_SMTP_URL ({scheme}://…): use smtp://, smtps:// or smtp+starttls://HOST[:PORT]"
        )
    if not parts.host:
        raise UsageError(f"TIFFIN_SMTP_URL ({scheme}://…) names no host")
    return SmtpSettings(
        scheme=scheme,
        host=parts.host,
        port=parts.port or SMTP_PORTS[scheme],
        user=parts.user or None,
        password=parts.password,
    )


def smtp_from_env() -> SmtpSettings | None:
    """Return the settings of TIFFIN_SMTP_URL, or None when it is unset (then sendmail is used).
    Raise UsageError if it is malformed."""
    url = os.environ.get("TIFFIN_SMTP_URL", "").strip()
    return parse_smtp_url(url) if url else None


def check_addresses(addresses: Sequence[str]) -> tuple[str, ...]:
    """Given --email values, return them. Raise UsageError for one that is no plain address."""
    for addr in addresses:
        if not _ADDRESS.match(addr):
            raise UsageError(f"--email {addr!r} is not an address like cook@example.org")
    return tuple(addresses)


def check_ping_url(url: str) -> str:
    """Given --ping-url, return it. Raise UsageError unless it is an http(s) URL with a host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--ping-url {redact_url_text(url)!r} must be an http:// or https:// URL")
    return url


def message(
    subject: str, sender: str, recipients: Sequence[str], body: str, host: str
) -> EmailMessage:
    """Given the parts of a mail, return it as a plain-text message ready to send."""
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid("tiffin", domain=host or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    return msg


def send(msg: EmailMessage, smtp: SmtpSettings | None, insecure: bool = False) -> str:
    """Given a message, send it through SMTP, or the local sendmail when SMTP is None. Return how
    it went ("smtp://host:port" or the sendmail path). Raise NotifyError if it was not sent."""
    if smtp is None:
        return _sendmail(msg)
    import smtplib
    import ssl

    context = ssl.create_default_context()  # honours SSL_CERT_FILE / SSL_CERT_DIR
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    helo = socket.gethostname() or "localhost"
    try:
        client: smtplib.SMTP
        if smtp.scheme == "smtps":
            client = smtplib.SMTP_SSL(
                smtp.host, smtp.port, local_hostname=helo, timeout=MAIL_TIMEOUT, context=context
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, local_hostname=helo, timeout=MAIL_TIMEOUT)
        with client:
            if smtp.scheme == "smtp+starttls":
                client.starttls(context=context)
                client.ehlo()
            if smtp.user:
                client.login(smtp.user, smtp.password or "")
            client.send_message(msg)
    except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        raise NotifyError(f"{smtp.redacted()}: {_why(exc)}") from None
    return smtp.redacted()


def _why(exc: BaseException) -> str:
    import smtplib
    import ssl
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return _why(exc.reason)
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, smtplib.SMTPResponseException):
        raw = exc.smtp_error
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
        return f"the server answered {exc.smtp_code} {text}".strip()
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the mail server running?)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its certificate is not trusted ({exc.verify_message}); --insecure skips the check"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


def find_sendmail() -> str | None:
    """Return the path of the local sendmail (on PATH, else /usr/sbin, /usr/lib), or None."""
    path = os.environ.get("PATH", "")
    return shutil.which("sendmail", path=os.pathsep.join([path, *SENDMAIL_DIRS]))


def _sendmail(msg: EmailMessage) -> str:
    exe = find_sendmail()
    if exe is None:
        raise NotifyError(
            "TIFFIN_SMTP_URL is not set and there is no local sendmail: set TIFFIN_SMTP_URL "
            "(e.g. smtp+starttls://USER:PASSWORD@mail.example:587) or install a mail agent"
        )
    try:
        process.run([exe, "-t", "-oi"], name="sendmail", input=msg.as_bytes(), timeout=60)
    except TiffinError as exc:
        raise NotifyError(str(exc)) from None
    return exe


def ping_url(url: str, suffix: str) -> str:
    """Given a healthchecks-style URL and "start", "fail" or "", return the URL to GET."""
    if not suffix:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + suffix))


def ping(url: str, suffix: str = "", timeout: float = PING_TIMEOUT) -> None:
    """Given a checked --ping-url and "start", "fail" or "" (success), GET it. Raise
    NotifyError if the server cannot be reached or does not answer 2xx in TIMEOUT seconds."""
    import urllib.request

    target = ping_url(url, suffix)
    request = urllib.request.Request(target, headers={"User-Agent": "tiffin"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            answer.read(1024)
    except (OSError, ValueError) as exc:
        raise NotifyError(f"{redact_url_text(target)}: {_why(exc)}") from None

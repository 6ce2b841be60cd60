"""The report sent through Apprise (`--notify URL`, repeatable: ntfy://, slack://, tgram://,
json://, ...), on success, warning and failure alike. A notice that cannot be sent is a
WARNING line, never a failed run (SPEC §7).

An Apprise URL is a secret as a whole (a bot token, a webhook's path): nothing here prints
one but as Apprise's privacy form shows it (`tgram://1...l/12345/`), and its logging, which
may name more, is captured rather than let through to tiffin's stderr.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from tiffin.errors import UsageError

if TYPE_CHECKING:
    import apprise

# Apprise is imported only by a run that has --notify (it takes ~0.1 s to import).
KIND = {"OK": "success", "WARNING": "warning", "FAILED": "failure"}  # apprise.NotifyType


def _apprise() -> apprise.Apprise:
    import apprise

    # In memory only: Apprise keeps nothing on disk, and loads no plugin from ~/.apprise.
    return apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory", plugin_paths=[]))


def check(urls: Sequence[str]) -> tuple[str, ...]:
    """Given --notify values, return them. Raise UsageError, quoting none of it but what a
    password-less URL shows, for one that Apprise cannot send to."""
    for url in urls:
        if not _apprise().add(url):
            raise UsageError(
                f"--notify {_scheme(url)}: not a URL "
                "that Apprise can send to (e.g. ntfy://ntfy.sh/TOPIC, json://HOST:PORT/)"
            )
    return tuple(urls)


def _scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://…" if sep and scheme.isascii() and scheme.isalnum() else "'…'"


def shown(url: str) -> str:
    """Given a --notify URL, return it as Apprise's privacy form shows it, without options."""
    one = _apprise()
    if not one.add(url):
        return _scheme(url)
    for service in one:
        url_of: Callable[..., object] = service.url  # Apprise's url() has no annotations
        private = url_of(privacy=True)
        return str(private).split("?", 1)[0]
    return _scheme(url)  # pragma: no cover - add() succeeded, so there is a service


def send(
    urls: Sequence[str], title: str, body: str, status: str, secrets: Iterable[str] = ()
) -> list[str]:
    """Given --notify URLs, the report's title, body and status (OK, WARNING, FAILED), send it
    to each. Return a WARNING line for each that failed; never raise for it."""
    import apprise

    warnings: list[str] = []
    hidden = tuple(secrets)
    logger = logging.getLogger("apprise")
    for url in urls:
        one = _apprise()
        one.add(url)
        propagate = logger.propagate
        logger.propagate = False  # what Apprise logs is shown below, redacted, or not at all
        try:
            log_capture: Callable[..., Any] = apprise.LogCapture  # it has no annotations
            capture = log_capture(level=logging.WARNING, fmt="%(message)s")
            with capture as captured:
                sent = bool(
                    one.notify(body=body, title=title, notify_type=apprise.NotifyType(KIND[status]))
                )
            why = captured.getvalue().strip().splitlines()
        except Exception as exc:  # a notice never fails the run, whatever a plugin raises
            sent, why = False, [f"{type(exc).__name__}: {exc}"]
        finally:
            logger.propagate = propagate
        if not sent:
            reason = why[-1] if why else "it was not accepted"
            for secret in hidden:
                reason = reason.replace(secret, "***")
            reason = reason.replace(url, shown(url))
            warnings.append(f"WARNING: could not send the report to {shown(url)}: {reason}")
    return warnings

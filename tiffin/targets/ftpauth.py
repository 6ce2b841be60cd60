"""The password of an FTP login: from the URL, TIFFIN_FTP_PASSWORD or ~/.netrc."""

from __future__ import annotations

import netrc
import os

from tiffin.errors import UsageError
from tiffin.job import TargetURL


def find_password(url: TargetURL) -> str:
    """Given an FTP target, return its password: from the URL, else TIFFIN_FTP_PASSWORD, else
    ~/.netrc by host. Raise UsageError if none is found: an anonymous login is never assumed."""
    if url.password is not None:
        return url.password
    if os.environ.get("TIFFIN_FTP_PASSWORD"):
        return os.environ["TIFFIN_FTP_PASSWORD"]
    try:
        auth = netrc.netrc().authenticators(url.host)
    except FileNotFoundError:
        auth = None
    except netrc.NetrcParseError as exc:
        # Parse errors may quote a token of the file, which can be a password: not shown.
        why = exc.msg if exc.msg.startswith("~/.netrc") else f"malformed at line {exc.lineno}"
        raise UsageError(
            f"~/.netrc cannot be used ({why}): fix it or use TIFFIN_FTP_PASSWORD"
        ) from None
    except OSError as exc:
        raise UsageError(f"~/.netrc cannot be read: {exc.strerror}") from None
    if auth is not None and auth[2] and auth[0] in ("", url.user):
        return auth[2]
    raise UsageError(
        f"no password for the FTP login {url.user}@{url.host}: give it as "
        f"{url.user}:PASSWORD@{url.host}, in TIFFIN_FTP_PASSWORD or in ~/.netrc "
        "(an anonymous login is never assumed)"
    )

"""URLs with a user and password in them, split without ever echoing the password.

`urllib.parse.urlsplit` cuts the authority at the first `/`, `?` or `#`, so a raw one of those
in a password puts the rest of it in the path or fragment, or (`u:ab@SECRET#x@host`) makes a
piece of it the host name that is then looked up. Here the rules are RFC 3986's, strictly:
a user or password holds `/ ? # @` %-encoded; a raw `?` or `#` anywhere, or a raw `@` where
a path begins after an authority that has one, is refused. No error message quotes any part
of the URL but its scheme: whatever is malformed may be a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from tiffin.errors import UsageError

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class URLParts:
    scheme: str  # lower-cased
    user: str | None
    password: str | None = field(repr=False)
    host: str  # without the brackets of an IPv6 address
    port: int | None
    path: str  # %-decoded; "" or starting with "/"


def looks_like_url(text: str) -> bool:
    """Return whether TEXT starts as a URL does (a scheme, then ://)."""
    return _SCHEME.match(text) is not None


def encode(text: str, safe: str = "") -> str:
    """Given a user, password or path, return it %-encoded (UTF-8; any lone surrogate an argv
    holds for a byte that is not UTF-8 comes back as that byte)."""
    return quote(text, safe=safe, errors="surrogateescape")


def decode(text: str) -> str:
    return unquote(text, errors="surrogateescape")


def host_text(host: str) -> str:
    """Given a host, return it as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def split_url(url: str, what: str = "the URL") -> URLParts:
    """Given URL, return its parts. Raise UsageError, naming WHAT and the scheme but quoting
    nothing else of the URL, if it is malformed."""
    if not looks_like_url(url):
        raise UsageError(f"{what} is not a URL: it must start with a scheme, as in ftp://")
    scheme, _, rest = url.partition("://")
    shown = f"{what} ({scheme}://…)"
    if "#" in rest or "?" in rest:
        raise UsageError(
            f"{shown} holds a raw '#' or '?': in a user, password or path write them %23 and "
            "%3F (a URL here has no query or fragment)"
        )
    authority, slash, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if "@" in path and (at or ":" in authority):
        raise UsageError(
            f"{shown} holds a raw '@' or '/' where a user or password ends: write an '@' "
            "or '/' in a user, password or path as %40 and %2F"
        )
    user = password = None
    if at:
        name, colon, secret = userinfo.partition(":")
        user = decode(name)
        password = decode(secret) if colon else None
    host, port = split_hostport(hostport, shown)
    return URLParts(scheme.lower(), user, password, host, port, decode(slash + path))


def split_hostport(hostport: str, shown: str) -> tuple[str, int | None]:
    """Given HOST[:PORT] or [IPV6][:PORT], return the host and the port (None if not given).
    Raise UsageError, naming SHOWN, if malformed (a bare IPv6 address needs its brackets)."""
    port_text: str | None = None
    if hostport.startswith("["):
        host, close, rest = hostport[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise UsageError(f"{shown}: an IPv6 address is written in brackets, [::1]:PORT")
        port_text = rest[1:] if rest else None
    elif hostport.count(":") > 1:
        raise UsageError(f"{shown}: write an IPv6 address in brackets, as in [::1]:2121")
    else:
        host, colon, tail = hostport.partition(":")
        port_text = tail if colon else None
    if not port_text:
        return host, None
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise UsageError(f"{shown}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def redact(text: str) -> str:
    """Given raw text that may be a URL holding a password, return it fit to show: everything
    up to the last '@' becomes ***, and so does a port that is no number (it may be a
    password whose '@' is missing)."""
    if not looks_like_url(text):
        return text
    scheme, _, rest = text.partition("://")
    if "@" in rest:
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    authority, slash, path = rest.partition("/")
    host, colon, port = authority.rpartition(":")
    if colon and not port.isdigit():
        authority = f"{host}:***"
    return f"{scheme}://{authority}{slash}{path}"

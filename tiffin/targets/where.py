"""Where backups live, as a user writes it: HOW WHERE [PATH] or a URL, parsed into a
TargetURL. The words and schemes come from the targets registry (tiffin/targets/__init__.py)."""

from __future__ import annotations

import ipaddress
import os

from tiffin.errors import UsageError
from tiffin.job import TargetURL, looks_like_url
from tiffin.targets import HOWS, SCHEMES
from tiffin.urls import split_hostport, split_url


def _join(a: str, b: str) -> str:
    if not b:
        return a
    if b.startswith("/") or not a:
        return b
    return a.rstrip("/") + "/" + b


def _clean_path(path: str, where: str) -> str:
    """Refuse `..` segments: a PATH may never climb out of the folder it names. Refuse a NUL
    (a %00 in a URL): no file name can hold one."""
    if "\0" in path:
        raise UsageError(f"the path {where!r} may not contain a NUL character (%00)")
    if any(seg == ".." for seg in path.split("/")):
        raise UsageError(f"the path {where!r} may not contain '..' segments")
    return path


def parse_target(how: str, where: str, path: str | None = None) -> TargetURL:
    """Given the seed's HOW WHERE [PATH], return a TargetURL. Raise UsageError if malformed."""
    kind = how.lower()
    if kind not in HOWS:
        raise UsageError(f"unknown target {how!r}: use one of {', '.join(HOWS)}, or a URL")
    if kind == "ssh":
        kind = "sftp"
    sub = _clean_path(path or "", path or "")
    if kind == "local":
        if not where:
            raise UsageError("local needs a directory, e.g. tiffin backup mysql local /var/backups")
        base = os.path.abspath(os.path.expanduser(where))
        return TargetURL("local", path=os.path.normpath(_join(base, sub.lstrip("/"))))
    if kind in ("s3", "s3multi"):
        if not where or "/" in where or "@" in where:
            shown = "" if "@" in where or ":" in where else f", got {where!r}"
            raise UsageError(f"{kind} needs a bucket name as WHERE{shown}")
        return TargetURL(kind, host=where, path=sub.strip("/"))
    if "@" not in where:
        shown = "" if ":" in where else f", got {where!r}"  # USER:PASSWORD without its @HOST
        raise UsageError(f"{how} needs USER@HOST[:PORT] as WHERE{shown}")
    userinfo, hostport = where.rsplit("@", 1)
    password: str | None = None
    if kind in ("ftp", "ftps") and ":" in userinfo:
        userinfo, password = userinfo.split(":", 1)
    elif ":" in userinfo:
        raise UsageError(
            "SSH takes no password in WHERE: use a key (--ssh-key FILE or ~/.ssh/id_*)"
        )
    host, port = split_hostport(hostport, repr(hostport))
    if not userinfo or not host:
        raise UsageError(f"{how} needs USER@HOST[:PORT] as WHERE")
    _check_host(host)
    return TargetURL(kind, host=host, port=port, user=userinfo, password=password, path=sub)


def _check_host(host: str) -> None:
    """Refuse a host that no resolver could be asked for: one holding a blank or a control
    character, or a name that IDNA cannot encode (an empty or overlong label ...)."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        ok = host.encode("idna").decode("ascii").isprintable() and " " not in host
    except UnicodeError:
        ok = False
    if not ok:
        raise UsageError(f"{host!r} is not a valid host name")


def parse_url(url: str) -> TargetURL:
    """Given a target URL (file://, ftp://, ftps://, sftp://, ssh://, s3://, s3multi://),
    return a TargetURL. Raise UsageError if malformed (quoting no part that may be secret)."""
    parts = split_url(url)
    kind = SCHEMES.get(parts.scheme)
    if kind is None:
        raise UsageError(f"unknown URL scheme {parts.scheme!r}: use one of {', '.join(SCHEMES)}")
    shown = f"the {parts.scheme}:// URL"
    path = _clean_path(parts.path, parts.path)
    if kind == "local":
        if parts.user is not None or parts.port or parts.host not in ("", "localhost") or not path:
            raise UsageError("a file:// URL names a local folder: file:///var/backups")
        return TargetURL("local", path=os.path.normpath(os.path.expanduser(path or "/")))
    if not parts.host:
        raise UsageError(f"{shown} names no host or bucket")
    if kind in ("s3", "s3multi"):
        if parts.user is not None or parts.port:
            raise UsageError(f"{shown} takes no user, password or port: s3://BUCKET/PATH")
        return TargetURL(kind, host=parts.host, path=path.strip("/"))
    _check_host(parts.host)
    if path.startswith("/~/") or path == "/~":
        path = path[3:]
    if kind == "sftp" and parts.password:
        raise UsageError("SSH takes no password in the URL: use a key (--ssh-key FILE)")
    if not parts.user:
        raise UsageError(f"{shown} names no user (USER@HOST)")
    return TargetURL(
        kind, host=parts.host, port=parts.port, user=parts.user, password=parts.password, path=path
    )


def target_of(positional: list[str], min_rest: int = 0) -> tuple[TargetURL, list[str]]:
    """Given the positionals after WHAT (HOW WHERE [PATH] ... or URL ...), return the target
    and the positionals left, of which MIN_REST are required after the target."""
    if not positional:
        raise UsageError("missing the target: HOW WHERE [PATH] (e.g. local /var/backups) or a URL")
    if looks_like_url(positional[0]):
        return parse_url(positional[0]), positional[1:]
    if len(positional) < 2:
        raise UsageError(f"{positional[0]} needs WHERE (a directory, USER@HOST or a bucket)")
    extra = len(positional) - 2 - min_rest
    if extra < 0:
        raise UsageError("missing the backup NAME (or latest)")
    if extra > 1:
        raise UsageError(f"unexpected argument {positional[3 + min_rest]!r}")
    path = positional[2] if extra == 1 else None
    return parse_target(positional[0], positional[1], path), positional[2 + extra :]

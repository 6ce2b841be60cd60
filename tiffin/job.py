"""Frozen descriptions of what to do, parsed once at the edge (cli/config)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, replace
from datetime import datetime

from tiffin.catalog.manifest import Manifest
from tiffin.errors import UsageError
from tiffin.urls import encode, host_text, redact, split_hostport, split_url
from tiffin.urls import looks_like_url as looks_like_url

HOWS = ("local", "ftp", "ftps", "ssh", "sftp", "s3", "s3multi")
SCHEMES = {
    "file": "local",
    "ftp": "ftp",
    "ftps": "ftps",
    "sftp": "sftp",
    "ssh": "sftp",
    "s3": "s3",
    "s3multi": "s3multi",
}
WHATS = {
    "mysql": "mysql",
    "pgsql": "pgsql",
    "postgresql": "pgsql",
    "postgres": "pgsql",
    "data": "data",
    "sqlite": "sqlite",
}
DEFAULT_PORTS = {"ftp": 21, "ftps": 21, "sftp": 22}


@dataclass(frozen=True)
class TargetURL:
    """Where backups live. `path` is relative to the login's home when it does not start with /.

    For `local` it is an absolute directory; for s3/s3multi a key prefix without slashes at
    either end ("" for the bucket's root).
    """

    kind: str
    host: str = ""
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    path: str = ""

    def redacted(self) -> str:
        """Return the target as a URL without its password, fit for reports and logs."""
        if self.kind == "local":
            return "file://" + encode(self.path, safe="/:~")
        if self.kind in ("s3", "s3multi"):
            return f"{self.kind}://{self.host}/{encode(self.path, safe='/:~')}".rstrip("/")
        auth = f"{encode(self.user)}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        path = self.path if self.path.startswith("/") else ("/~/" + self.path if self.path else "")
        return f"{self.kind}://{auth}{host_text(self.host)}{port}{encode(path, safe='/:~')}"

    def with_password(self, password: str | None) -> TargetURL:
        return replace(self, password=password)


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


def redact_url_text(text: str) -> str:
    """Given raw user text that may hold a URL with a password, return it without the password."""
    return redact(text)


@dataclass(frozen=True)
class DBConn:
    """How to reach a database server; the password never travels on a command line."""

    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    socket: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    what: str
    conn: DBConn = DBConn()
    databases: tuple[str, ...] = ()
    consistency: str = "auto"
    replica: bool = False
    dir: str = "~/data"
    excludes: tuple[str, ...] = ()
    file: str | None = None


@dataclass(frozen=True)
class TargetOptions:
    ssh_key: str | None = None
    endpoint_url: str | None = None
    insecure: bool = False
    timeout: float = 120.0
    chunk_size: int = 4 << 30
    mode: int = 0o600


@dataclass(frozen=True)
class Retention:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def any(self) -> bool:
        return any((self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly))


@dataclass(frozen=True)
class BackupJob:
    source: SourceSpec
    target: TargetURL
    target_options: TargetOptions = TargetOptions()
    label: str = ""
    compress: str = "gzip"
    compress_level: int | None = None
    compress_threads: int = 0
    encrypt_to: tuple[str, ...] = ()
    min_ratio: float = 0.5
    emails: tuple[str, ...] = ()
    ping_url: str | None = None
    retention: Retention = Retention()
    quiet: bool = False
    debug: bool = False
    name: str = ""


@dataclass(frozen=True)
class RestoreJob:
    target: TargetURL
    name: str
    target_options: TargetOptions = TargetOptions()
    into: str | None = None
    output: str | None = None
    source: SourceSpec = SourceSpec("data")
    identity: str | None = None
    force: bool = False
    overwrite: bool = False
    quiet: bool = False
    debug: bool = False
    source_id: str | None = None  # `latest` of this source only (tiffin/sources/identity.py)


@dataclass(frozen=True)
class BackupResult:
    name: str
    what: str
    label: str
    target: str
    size: int
    started: datetime
    finished: datetime
    consistency: str | None = None
    warnings: tuple[str, ...] = ()
    previous_size: int | None = None
    manifest: Manifest | None = None
    pruned: tuple[str, ...] = field(default_factory=tuple)

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()

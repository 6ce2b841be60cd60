"""Frozen descriptions of what to do, parsed once at the edge (cli/config)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from tiffin.catalog.manifest import Manifest
from tiffin.urls import encode, host_text, redact
from tiffin.urls import looks_like_url as looks_like_url

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
    physical: bool = False  # pgsql: pg_basebackup; mysql: mariabackup (SPEC §6)
    counts: str = "exact"  # the row counts drill checks against: exact, estimate or off


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
    metrics_file: str | None = None  # SPEC §7: node_exporter's textfile
    pushgateway: str | None = field(default=None, repr=False)  # may hold a password
    notify: tuple[str, ...] = field(default=(), repr=False)  # Apprise URLs: secrets whole
    job_name: str = ""  # the config job's name: the metrics' `job` (else LABEL-WHAT)


@dataclass(frozen=True)
class DrillJob:
    """`tiffin drill`: restore NAME from TARGET into scratch space (INTO) and check it."""

    target: TargetURL
    name: str
    into: str
    source: SourceSpec
    target_options: TargetOptions = field(default_factory=TargetOptions)
    identity: str | None = None
    label: str | None = None
    workdir: str | None = None  # where the scratch folder of a dir/sqlite drill goes
    emails: tuple[str, ...] = ()
    ping_url: str | None = None
    source_id: str | None = None  # `latest` of this source only (tiffin/sources/identity.py)
    to_time: datetime | None = None  # --into mysql replays the binary logs to it (SPEC §6)
    metrics_file: str | None = None
    pushgateway: str | None = field(default=None, repr=False)
    notify: tuple[str, ...] = field(default=(), repr=False)


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
    to_time: datetime | None = None  # point-in-time recovery: the target (aware, UTC)
    to_lsn: str | None = None  # pgsql: the target as a WAL position
    owner: str | None = None  # pgdata, mysqldata: the OS user who gets the data directory


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


@dataclass(frozen=True)
class BinlogJob:
    """`tiffin binlog`: ship a MySQL/MariaDB server's binary logs to TARGET/LABEL.binlog/."""

    conn: DBConn
    target: TargetURL
    target_options: TargetOptions = TargetOptions()
    label: str = ""
    compress: str = "gzip"
    compress_level: int | None = None
    follow: bool = False
    max_lag: float = 60.0  # --follow: the most seconds the archive may lag the server
    quiet: bool = False
    metrics_file: str | None = None
    pushgateway: str | None = field(default=None, repr=False)
    notify: tuple[str, ...] = field(default=(), repr=False)
    job_name: str = ""

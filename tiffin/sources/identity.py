"""Which source a backup is of, beyond its label and kind: backups of different sources
never share a lock, a retention group, a --min-ratio comparison or a `latest`.

The identity is recorded in the manifest as source.identity, a small object that names the
source and never a secret: a folder's absolute path and its excludes, a SQLite file's
absolute path, a database server's address (host:port, or its socket) and the databases
dumped. Its key, a short stable hash of it, stands in lock names and on the command line
(`--source-id`). Manifests written before it have none: their backups form a group of their
own, as they did before, so they stay readable and prunable.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from tiffin.job import SourceSpec
from tiffin.sources.base import address


def identity(spec: SourceSpec) -> dict[str, Any]:
    """Given a source, return its identity (see above)."""
    if spec.what == "data":
        folder = os.path.abspath(os.path.expanduser(spec.dir))
        return {"folder": folder, "excludes": sorted(spec.excludes)}
    if spec.what == "sqlite":
        return {"file": os.path.abspath(os.path.expanduser(spec.file or ""))}
    conn = spec.conn
    socket = conn.socket if spec.what in ("mysql", "mariabackup") else None
    return {
        "server": address(conn.host, conn.port, socket),
        "databases": sorted(spec.databases) or "all",
    }


def key(ident: Mapping[str, Any] | None) -> str | None:
    """Given an identity (None: a manifest from before identities), return its key: 16 hex
    digits of the sha256 of its canonical JSON, or None."""
    if not isinstance(ident, Mapping):
        return None
    canonical = json.dumps(ident, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def key_of(details: Mapping[str, Any] | None) -> str | None:
    """Given a manifest's source details (or None), return its identity's key, or None."""
    return key(details.get("identity")) if isinstance(details, Mapping) else None

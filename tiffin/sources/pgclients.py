"""Which PostgreSQL client to run: a pg_dump older than the server refuses to dump it, so
the matching client is picked among Debian's /usr/lib/postgresql/N/bin."""

from __future__ import annotations

import glob
import os
import re

from tiffin.engine import process
from tiffin.errors import BackupFailed

CLIENT_DIRS = "/usr/lib/postgresql/*/bin"
PG_WRAPPER = "/usr/share/postgresql-common/pg_wrapper"


def client_versions(tool: str) -> dict[int, str]:
    """Return {major: path} of every TOOL (pg_dump, psql, ...) installed."""
    found: dict[int, str] = {}
    for d in sorted(glob.glob(CLIENT_DIRS)):
        path = os.path.join(d, tool)
        m = re.search(r"/(\d+)/bin$", d)
        if m and os.access(path, os.X_OK):
            found[int(m.group(1))] = path
    on_path = process.which(tool)
    # Debian's /usr/bin/pg_dump, psql... are one Perl wrapper that runs the newest of the
    # directories above: asking it its version would only cost a Perl start-up.
    if on_path and not (found and os.path.realpath(on_path) == PG_WRAPPER):
        out = process.run((on_path, "--version"), name=tool)
        m = re.search(r"(\d+)(?:\.\d+)?", out)
        if m:
            found.setdefault(int(m.group(1)), on_path)
    return found


def newest_psql() -> str:
    """Return the newest psql installed, called directly: Debian's wrapper in /usr/bin adds
    a Perl start-up (~40 ms) to every call, and any psql reads an older server's catalog."""
    found = client_versions("psql")
    return found[max(found)] if found else "psql"


def pick_client(tool: str, server_major: int, available: dict[int, str]) -> str:
    """Given a tool, the server's major version and the installed clients, return the path of
    the client to use: the same major, else the oldest newer one. Raise BackupFailed naming
    both versions if every client is older than the server."""
    if server_major in available:
        return available[server_major]
    newer = sorted(v for v in available if v > server_major)
    if newer:
        return available[newer[0]]
    have = max(available) if available else None
    raise BackupFailed(
        f"{tool} {have if have else '(none)'} is older than the PostgreSQL {server_major} server "
        f"and cannot dump it: install postgresql-client-{server_major}"
    )


def pick_major(path: str) -> int | str:
    m = re.search(r"/(\d+)/bin/", path)
    return int(m.group(1)) if m else "(on PATH)"

"""Clean environments for child processes (tiffin itself and the test servers).

The machine running the tests may have proxies, AWS credentials, ``PG*``/``MYSQL*``
variables, an SSH agent or a ``~/.my.cnf``: none of that may leak into a test.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["scrubbed_environ", "tiffin_env"]

# Dropped when the upper-cased name starts with one of these.
DROP_PREFIXES = ("AWS_", "TIFFIN_", "PG", "MYSQL", "MARIADB_", "BOTO_")
# Dropped by exact name (upper-cased).
DROP_NAMES = frozenset(
    {
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
        "PSQLRC",
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "XDG_DATA_HOME",
        "XDG_STATE_HOME",
    }
)


_auto_homes: list[str] = []


@atexit.register
def _remove_auto_homes() -> None:
    for home in _auto_homes:
        shutil.rmtree(home, ignore_errors=True)


def _dropped(name: str) -> bool:
    upper = name.upper()
    return upper.endswith("_PROXY") or upper.startswith(DROP_PREFIXES) or upper in DROP_NAMES


def scrubbed_environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) without any variable that could
    point a client somewhere else: ``*_PROXY``, ``AWS_*``, ``TIFFIN_*``, ``PG*``,
    ``MYSQL*``, ``MARIADB_*``, ``BOTO_*``, the SSH agent and ``XDG_*`` dirs.
    ``PATH`` and everything else are kept."""
    source = os.environ if base is None else base
    return {k: v for k, v in source.items() if not _dropped(k)}


def tiffin_env(home: str | os.PathLike[str] | None = None, **extra: str) -> dict[str, str]:
    """Environment for a tiffin child process: :func:`scrubbed_environ` with
    ``HOME`` set to ``home`` (a fresh temp dir when omitted, removed at exit; so the machine's
    ``~/.my.cnf``, ``~/.pgpass``, ``~/.aws``, ``~/.ssh`` never leak in), plus ``extra``.
    """
    if home is None:
        home = tempfile.mkdtemp(prefix="tiffin-home-")
        _auto_homes.append(home)
    Path(home).mkdir(parents=True, exist_ok=True)
    env = scrubbed_environ()
    env["HOME"] = os.fspath(home)
    env.update(extra)
    return env

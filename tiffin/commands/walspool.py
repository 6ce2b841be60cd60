"""What wal-push and wal-fetch keep between PostgreSQL's calls, in the server's own pg_wal
folder (the folder of %p), so that no setting is needed and the data directory's life bounds
theirs: pg_basebackup copies no subfolder of pg_wal but archive_status, and PostgreSQL looks
only at names of WAL files there.

- `pg_wal/tiffin.pushed/NAME.ok`: NAME was pushed ahead of PostgreSQL's call for it, stored
  and checked; it holds the archive's key and the file's (size, inode, mtime) when read. The
  call for NAME that finds a record with the same key and the same file exits 0 at once and
  removes the record (a later call for the same NAME checks the archive itself).
- `pg_wal/tiffin.fetched/NAME`: NAME fetched ahead and checked against its sha256, with
  `KEY` naming the archive; the call for NAME renames it to %p.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Mapping
from typing import Any

PUSHED, FETCHED, KEY = "tiffin.pushed", "tiffin.fetched", "KEY"
RECORD = ".ok"


def key_of(target_args: list[str], values: Mapping[str, Any]) -> str:
    """Given the target as the command line gives it (HOW WHERE [PATH], or a URL) and the
    option values, return what names that archive in the spools: the words, the label and
    what in the environment may change where they lead. Both the lean entry and a WalJob
    compute it, so that a call can find its record before loading the rest of tiffin."""
    env = [os.environ.get(k, "") for k in ("HOSTNAME", "AWS_ENDPOINT_URL", "HOME")]
    opts = [str(values.get(k) or "") for k in ("label", "endpoint_url")]
    return json.dumps([target_args, opts, env])


def identity(st: os.stat_result) -> list[int]:
    """Given a WAL file's stat, return what a record compares: size, inode, mtime."""
    return [st.st_size, st.st_ino, st.st_mtime_ns]


class PushSpool:
    """The records of files pushed ahead, beside the WAL file PostgreSQL names."""

    def __init__(self, walpath: str, key: str) -> None:
        self.wal_dir = os.path.dirname(walpath) or "."
        self.dir = os.path.join(self.wal_dir, PUSHED)
        self.key = key

    def take(self, name: str, st: os.stat_result) -> bool:
        """Return whether NAME, as it is now (ST), was pushed ahead to this archive; the
        record is removed either way."""
        path = os.path.join(self.dir, name + RECORD)
        try:
            with open(path, encoding="utf-8") as f:
                rec = json.loads(f.read(4096))
        except (OSError, ValueError):
            return False
        with contextlib.suppress(OSError):
            os.unlink(path)
        return (
            isinstance(rec, dict) and rec.get("key") == self.key and rec.get("file") == identity(st)
        )

    def record(self, name: str, before: os.stat_result) -> None:
        """Note that NAME, as it was when read (BEFORE), is stored and checked, if it has not
        changed since. Best effort: a record that cannot be written costs a later check."""
        try:
            if identity(os.stat(os.path.join(self.wal_dir, name))) != identity(before):
                return
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            text = json.dumps({"key": self.key, "file": identity(before)})
            temp = os.path.join(self.dir, f".{name}.{os.getpid()}.tmp")
            with open(temp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(temp, os.path.join(self.dir, name + RECORD))
        except OSError:
            pass

    def ready(self, skip: str, most: int) -> list[str]:
        """Return up to MOST names that PostgreSQL has marked ready to archive (other than
        SKIP and those with a record), in the order it archives them: history files first,
        then by name. A folder that cannot be read gives none. The names are as found: not
        yet checked to be WAL files' names."""
        if most <= 0:
            return []
        try:
            names = os.listdir(os.path.join(self.wal_dir, "archive_status"))
        except OSError:
            return []
        try:
            done = set(os.listdir(self.dir))
        except OSError:
            done = set()
        found = []
        for entry in names:
            if not entry.endswith(".ready"):
                continue
            name = entry[: -len(".ready")]
            if name != skip and name + RECORD not in done:
                found.append(name)
        found.sort(key=lambda n: (not n.endswith(".history"), n))
        return found[:most]


class FetchSpool:
    """Files fetched ahead and checked, beside the path PostgreSQL restores into."""

    def __init__(self, dest: str, key: str) -> None:
        self.dir = os.path.join(os.path.dirname(dest) or ".", FETCHED)
        self.key = key

    def usable(self) -> bool:
        """Make the spool ready for this archive (emptied if it held another's); return False
        if it cannot be made (then nothing is fetched ahead)."""
        key_path = os.path.join(self.dir, KEY)
        try:
            with open(key_path, encoding="utf-8") as f:
                if f.read(4096) == self.key:
                    return True
        except OSError:
            pass
        self.clear()
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            with open(key_path, "w", encoding="utf-8") as f:
                f.write(self.key)
        except OSError:
            return False
        return True

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def take(self, name: str, dest: str) -> bool:
        """Move NAME, fetched ahead for this archive, to DEST; return False if it is not here."""
        if not name.isalnum() and not name.replace(".", "").isalnum():
            return False
        if not os.path.exists(self.path(name)) or not self.usable():
            return False
        try:
            os.replace(self.path(name), dest)
        except OSError:
            return False
        return True

    def holds(self, name: str) -> bool:
        return os.path.exists(self.path(name))

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

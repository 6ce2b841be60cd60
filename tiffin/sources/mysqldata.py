"""restore --into mysqldata --dir DATADIR: a physical MariaDB backup made a data directory.

The backup's stream is unpacked by mbstream into a private work folder beside DATADIR,
prepared there by `mariabackup --prepare` (which applies the redo log copied during the
backup), then moved into DATADIR by `mariabackup --move-back` (renames, on the same file
system). DATADIR must be absent or empty; run as root, it is given to the `mysql` OS user
(or --owner USER). Nothing is left but DATADIR on success, and nothing at all (DATADIR as
it was) on failure.

A backup's bytes are untrusted: the stream passes tiffin.sources.xbstream.Checked on its
way to mbstream, so no file of it is written outside the work folder, and mariabackup reads
its options from a copy of the backup's backup-my.cnf that keeps only the InnoDB layout
settings it needs, with plain file names (a plugin to load, or a folder elsewhere, is never
taken from a backup).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import tempfile
from typing import Any

from tiffin.engine import process
from tiffin.engine.streams import Reader
from tiffin.errors import BackupFailed, ToolFailed, UsageError
from tiffin.job import RestoreJob
from tiffin.sources.mariabackup import PACKAGE, reason, tool
from tiffin.sources.xbstream import Checked, Refused

OWNER = "mysql"
# backup-my.cnf's settings a prepare needs, and what their values may be.
_WORD = r"[A-Za-z0-9_]{1,64}"
_FILE = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}:\d{1,20}[KMGkmg]?(:autoextend(:max:\d{1,20}[KMGkmg]?)?)?"
LAYOUT = {
    "innodb_checksum_algorithm": _WORD,
    "innodb_data_file_path": rf"{_FILE}(;{_FILE}){{0,63}}",
    "innodb_log_file_size": r"\d{1,20}[KMGkmg]?",
    "innodb_log_files_in_group": r"\d{1,3}",
    "innodb_page_size": r"\d{1,20}[KMGkmg]?",
    "innodb_undo_directory": r"\.?/?",
    "innodb_undo_tablespaces": r"\d{1,3}",
    "innodb_compression_level": r"\d{1,2}",
    "innodb_log_block_size": r"\d{1,20}",
}
MUST_HAVE = ("xtrabackup_checkpoints", "backup-my.cnf")


def safe_options(text: str) -> str:
    """Given a backup's backup-my.cnf, return the option file mariabackup is given instead: a
    [mysqld] group of the LAYOUT settings whose values are what they may be. Raise Refused
    if a layout setting has any other value (a data file elsewhere than in the backup)."""
    return "[mysqld]\n" + "".join(f"{k}={v}\n" for k, v in layout(text).items())


def layout(text: str) -> dict[str, str]:
    """Given a backup's backup-my.cnf, return its LAYOUT settings (see safe_options)."""
    kept: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, _, value = (p.strip() for p in line.partition("="))
        key = key.replace("-", "_").lower()
        if key not in LAYOUT:
            continue
        if not re.fullmatch(LAYOUT[key], value) or ".." in value:
            raise Refused(
                f"the backup's backup-my.cnf sets {key} to {value[:80]!r}, which a backup "
                "made by mariabackup never holds"
            )
        kept[key] = value
    kept.pop("innodb_undo_directory", None)  # the data directory itself
    return kept


def owner_of(job: RestoreJob) -> tuple[str, int, int] | None:
    """Return (name, uid, gid) of the OS user who gets the data directory: --owner, else
    `mysql` when running as root; None when not root and no --owner is given. Raise
    BackupFailed if that user does not exist or cannot be given files by this user."""
    name = job.owner or (OWNER if os.geteuid() == 0 else None)
    if name is None:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise BackupFailed(
            f"there is no OS user {name} to own the data directory: create it, or name "
            "another with --owner"
        ) from None
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        raise BackupFailed(f"only root can give the data directory to {name}: run as root")
    return name, entry.pw_uid, entry.pw_gid


def empty_or_absent(path: str) -> bool:
    """Return whether PATH does not exist, or is a folder (not a link) holding nothing."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    return stat.S_ISDIR(st.st_mode) and not os.listdir(path)


class MysqlDataLoader:
    """Writes a physical MariaDB backup as a data directory (see the module's docstring)."""

    staged = True  # nothing reaches DATADIR before the stream ended whole (sources/base.py)

    def __init__(self, job: RestoreJob) -> None:
        self.job = job
        self.datadir = os.path.abspath(os.path.expanduser(job.source.dir))
        self.mbstream = ""
        self.mariabackup = ""
        self.layout: dict[str, str] = {}  # the backup's InnoDB layout, once unpacked

    def check(self, details: dict[str, Any]) -> None:
        if details.get("physical") != "mariabackup":
            raise BackupFailed(
                "this backup is not a physical MariaDB backup: restore it --into "
                + ("mysql" if details.get("server") == "mysql" else "its own kind")
            )
        if self.job.to_time is not None or self.job.to_lsn is not None:
            raise UsageError("--into mysqldata restores the backup as it was taken: drop --to-time")
        if not empty_or_absent(self.datadir):
            raise BackupFailed(
                f"{self.datadir} is not an empty folder: give a data directory that is "
                "absent or empty"
            )
        parent = os.path.dirname(self.datadir)
        if not os.path.isdir(parent):
            raise BackupFailed(f"{parent} does not exist: create it first")
        owner_of(self.job)
        self.mariabackup = tool()
        found = process.which("mbstream")
        if not found:
            raise BackupFailed(f"mbstream is not installed here: install {PACKAGE}")
        self.mbstream = found

    def load(self, reader: Reader, details: dict[str, Any]) -> str:
        owner = owner_of(self.job)
        made = not os.path.lexists(self.datadir)
        work = tempfile.mkdtemp(
            prefix=f".{os.path.basename(self.datadir)}.tiffin-", dir=os.path.dirname(self.datadir)
        )
        try:
            unpacked = os.path.join(work, "backup")
            os.mkdir(unpacked, 0o700)
            self._unpack(reader, unpacked)
            options = os.path.join(work, "backup-my.cnf")
            with open(
                os.path.join(unpacked, "backup-my.cnf"), encoding="utf-8", errors="replace"
            ) as f:
                self.layout = layout(f.read(1 << 16))
                text = safe_options("\n".join(f"{k}={v}" for k, v in self.layout.items()))
            with open(os.open(options, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write(text)
            self._mariabackup(options, "--prepare", f"--target-dir={unpacked}")
            if made:
                os.mkdir(self.datadir, 0o750)
            self._mariabackup(
                options, "--move-back", f"--target-dir={unpacked}", f"--datadir={self.datadir}"
            )
            if owner is not None:
                _give(self.datadir, owner[1], owner[2])
        except BaseException:
            _undo(self.datadir, made)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        user = owner[0] if owner else pwd.getpwuid(os.geteuid()).pw_name
        return (
            f"data directory {self.datadir} written, owned by {user}; start the server on it "
            f"with: mariadbd --datadir={self.datadir} --user={user} (or set datadir in its "
            "my.cnf and start the service)"
        )

    def server_options(self) -> tuple[str, ...]:
        """The options a server started on the restored directory needs for its layout."""
        keys = ("innodb_data_file_path", "innodb_page_size")
        return tuple(f"--{k.replace('_', '-')}={self.layout[k]}" for k in keys if k in self.layout)

    def _unpack(self, reader: Reader, folder: str) -> None:
        checked = Checked(reader)
        child = process.feed((self.mbstream, "-x", "-C", folder), checked, name="mbstream")
        if child.proc.returncode != 0:
            raise ToolFailed("mbstream", child.proc.returncode, child.stderr_tail)
        missing = [f for f in MUST_HAVE if f not in checked.files]
        if missing:
            raise Refused(
                f"the backup holds no {', '.join(missing)}: it is not a backup mariabackup made"
            )
        for top, dirs, files in os.walk(folder):
            for n in dirs + files:
                mode = os.lstat(os.path.join(top, n)).st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise Refused(f"the backup unpacked {n!r}, which is not a file or folder")

    def _mariabackup(self, options: str, *args: str) -> None:
        cmd = (self.mariabackup, f"--defaults-file={options}", *args)
        try:
            process.run(cmd, name="mariabackup", timeout=24 * 3600)
        except ToolFailed as exc:  # its last error line, not its last dozen lines of progress
            why = reason(exc.stderr_tail.splitlines(), exc.stderr_tail)
            raise ToolFailed(f"mariabackup {args[0]}", exc.returncode, why) from None


def _give(root: str, uid: int, gid: int) -> None:
    """Give ROOT and everything under it (never following a link) to UID:GID."""
    os.lchown(root, uid, gid)
    for top, dirs, files in os.walk(root):
        for n in dirs + files:
            os.lchown(os.path.join(top, n), uid, gid)


def _undo(datadir: str, made: bool) -> None:
    """Leave DATADIR as it was before a failed restore: absent (if it was made) or empty."""
    if made:
        shutil.rmtree(datadir, ignore_errors=True)
        return
    if os.path.isdir(datadir) and not os.path.islink(datadir):
        for n in os.listdir(datadir):
            path = os.path.join(datadir, n)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)

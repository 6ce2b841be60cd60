"""restore --into pgdata: a base backup written into a data directory set to recover from the
WAL archive to a time, an LSN or the archive's end, then promote (SPEC §6).

Everything that can refuse does so before the first byte is written: the base backup is
chosen, the archive is listed and the target checked against its window and gaps. The data
directory is then written, and set up: recovery.signal, and in postgresql.auto.conf a
restore_command running `tiffin wal-fetch` on the same target (through walask, the fetch
helper's client, which starts it only when no helper answers), the recovery target and
`recovery_target_action = 'promote'`. A secret the target needs (an FTP password, S3 keys)
is never written there: it goes to DATADIR/tiffin-recovery.env (0600, the owner's), which
the restore_command names with --env-file.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tiffin.catalog import pitr, walnames
from tiffin.catalog.holdings import survey
from tiffin.catalog.manifest import Manifest
from tiffin.commands import walask
from tiffin.commands.schedule import S3_VARS, TLS_VARS
from tiffin.engine import archive, process, safefile, walview
from tiffin.engine.stored import check_stored, decoded, decoders_for
from tiffin.engine.streams import Prefetch, buffered
from tiffin.errors import BackupFailed
from tiffin.job import RestoreJob, TargetOptions, TargetURL
from tiffin.sources.pgbase import PgDataLoader
from tiffin.targets import Target, connected

ENV_FILE = "tiffin-recovery.env"
# What wal-fetch may need of this environment, by the target's kind: S3's settings and
# keys, TLS, an FTP password.
S3_ENV: tuple[str, ...] = (*S3_VARS, *TLS_VARS, "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")
SECRET_VARS = {
    "s3": S3_ENV,
    "s3multi": S3_ENV,
    "ftp": ("TIFFIN_FTP_PASSWORD",),
    "ftps": ("TIFFIN_FTP_PASSWORD", *TLS_VARS),
}


@dataclass(frozen=True)
class Recovered:
    name: str
    summary: str
    seconds: float
    start: str  # the command that starts the server


def conf_string(value: str) -> str:
    """Given a value, return it quoted as postgresql.conf reads a string."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def restore_command(argv: list[str]) -> str:
    """Given the command that fetches one WAL file (without its two last arguments), return
    restore_command's value: shell words (PostgreSQL runs it with sh), '%' doubled, then %f %p."""
    return " ".join(shlex.quote(a).replace("%", "%%") for a in argv) + " %f %p"


def fetch_argv(
    tiffin: list[str], url: TargetURL, options: TargetOptions, label: str, env_file: str | None
) -> list[str]:
    """Return the `tiffin wal-fetch` words that reach URL's archive of LABEL as this restore
    did (its options; its secrets through ENV_FILE)."""
    argv = [*tiffin, walask.FETCH, url.redacted(), "--label", label]
    if env_file:
        argv += ["--env-file", env_file]
    if options.ssh_key:
        argv += ["--ssh-key", os.path.abspath(os.path.expanduser(options.ssh_key))]
    if options.endpoint_url:
        argv += ["--endpoint-url", options.endpoint_url]
    if options.insecure:
        argv.append("--insecure")
    return argv


def client_argv(fetch: list[str]) -> list[str]:
    """Given the `tiffin wal-fetch` words, return the words that run them through the fetch
    helper's client (walask: this Python, isolated and without site, loads that one file),
    or FETCH as it is if this Python or that file cannot be named."""
    python, client = sys.executable, os.path.abspath(walask.__file__)
    if not python or not os.path.isabs(python) or not os.path.isfile(client):
        return fetch
    return [python, "-I", "-S", client, *fetch]


def secrets_of(url: TargetURL) -> dict[str, str]:
    """Return what wal-fetch needs from this environment to reach URL, secrets included."""
    env = {n: os.environ[n] for n in SECRET_VARS.get(url.kind, ()) if os.environ.get(n)}
    if url.password is not None:
        env["TIFFIN_FTP_PASSWORD"] = url.password
    return env


def recovery_lines(command: str, to_time: datetime | None, to_lsn: str | None) -> list[str]:
    """Return the lines added to postgresql.auto.conf."""
    lines = [
        "# Added by tiffin restore: recover from the WAL archive, then promote.",
        f"restore_command = {conf_string(command)}",
        "recovery_target_timeline = 'latest'",
        "recovery_target_action = 'promote'",
    ]
    if to_time is not None:
        stamp = to_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00")
        lines += [f"recovery_target_time = '{stamp}'", "recovery_target_inclusive = on"]
    elif to_lsn is not None:
        lines += [f"recovery_target_lsn = '{to_lsn}'", "recovery_target_inclusive = on"]
    return lines


def owner_of(job: RestoreJob) -> pwd.struct_passwd | None:
    """Return the OS user who gets the data directory: --owner, else postgres when run as
    root; None when run as another user without --owner. Raise BackupFailed if unknown."""
    name = job.owner or ("postgres" if os.geteuid() == 0 else None)
    if name is None:
        return None
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        raise BackupFailed(f"there is no OS user {name!r} to give the data directory to") from None
    if os.geteuid() != 0 and user.pw_uid != os.geteuid():
        raise BackupFailed(f"only root can give the data directory to {name}: drop --owner")
    return user


def give(path: str, user: pwd.struct_passwd) -> None:
    """Give PATH and everything under it to USER (links themselves, never what they name)."""
    os.lchown(path, user.pw_uid, user.pw_gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.lchown(os.path.join(root, n), user.pw_uid, user.pw_gid)


def start_command(datadir: str, major: int, user: pwd.struct_passwd | None) -> str:
    """Return the command that starts the recovered server."""
    pg_ctl = f"/usr/lib/postgresql/{major}/bin/pg_ctl"
    if not os.path.exists(pg_ctl):
        pg_ctl = "pg_ctl"
    log = os.path.join(datadir, "recovery.log")
    cmd = f"{pg_ctl} -D {shlex.quote(datadir)} -l {shlex.quote(log)} start"
    if user is not None and os.geteuid() == 0:
        return f"runuser -u {shlex.quote(user.pw_name)} -- {cmd}"
    return cmd


def run(job: RestoreJob, tiffin: list[str]) -> Recovered:
    """Given a restore --into pgdata job and the command that runs this tiffin, write the data
    directory set to recover. Raise BackupFailed (before anything is written) if the target
    is outside the archive's window or past a gap, TiffinError for what fails later (what
    was written is then removed)."""
    t0 = time.monotonic()
    process.set_patience(job.target_options.timeout)
    loader = PgDataLoader(job)
    user = owner_of(job)
    to_lsn = walnames.parse_lsn(job.to_lsn) if job.to_lsn else None
    with connected(job.target, job.target_options) as target:
        items = [b for b in survey(target) if b.kind == "pgbase"]
        bases = [b for b in map(pitr.base_of, items) if b is not None]
        if job.name != "latest":
            decoders_for(job.name, job.identity)
            if not any(b.name == job.name for b in items):
                raise BackupFailed(f"there is no base backup named {job.name} here")
        elif job.source_id is not None:
            keep = {b.name for b in items if b.source == job.source_id}
            bases = [b for b in bases if b.name in keep]
        try:
            base = pitr.pick(bases, job.name, job.to_time)
            [chosen] = [b for b in items if b.name == base.name]
            assert chosen.manifest is not None
            details = chosen.manifest.source
            loader.check(details)
            decoders_for(base.name, job.identity)
            to_time = job.to_time
            with connected(archive.folder(job.target, base.label), job.target_options) as arch:
                seen = walview.view(arch)
                got = pitr.reach(base, seen.names, seen.history)
                pitr.check_target(base, got, seen.names, seen.history, to_time, to_lsn)
                if to_time is not None:
                    to_time = _time_target(arch, base, got, seen, to_time, details)
        except pitr.Refused as exc:
            raise BackupFailed(str(exc)) from None
        summary = _write(job, loader, target, chosen.manifest, base, user, tiffin, to_time)
    start = start_command(loader.dir, _major(details), user)
    return Recovered(base.name, summary, time.monotonic() - t0, start)


def _major(details: dict[str, Any]) -> int:
    m = re.match(r"\d+", str(details.get("server_version", "")))
    return int(m.group(0)) if m else 15


def _time_target(
    arch: Target,
    base: pitr.Base,
    got: pitr.Reach,
    seen: walview.ArchiveView,
    to_time: datetime,
    details: dict[str, Any],
) -> datetime | None:
    """Return the time target to give PostgreSQL: None (recover to the end) when no
    transaction of the archive committed after TO_TIME, for PostgreSQL refuses to promote
    when it never meets a commit past its target."""
    if got.last is None:
        return None  # only the backup's own WAL, which ends before TO_TIME
    seg = base.seg_size
    chain = walnames.chain(base.stop_lsn, got.last_segno * seg, seen.history, seg)
    last = walview.last_commit(arch, chain, _major(details))
    if last is not None and to_time >= last:
        return None
    return to_time


def _write(
    job: RestoreJob,
    loader: PgDataLoader,
    target: Target,
    manifest: Manifest,
    base: pitr.Base,
    user: pwd.struct_passwd | None,
    tiffin: list[str],
    to_time: datetime | None,
) -> str:
    """Write the base backup into the data directory and set it to recover; on any failure
    remove what was written (the directory too, if this made it)."""
    datadir = loader.dir
    made = not os.path.exists(datadir)
    try:
        raw, plain = decoded(target, base.name, manifest, job.identity)
        # Reading, checking and decompressing run in a thread of their own, beside the files
        # being written (zstd lets go of the GIL): measured 5.8 s -> ... on 450 MB.
        stream = buffered(Prefetch(plain, depth=8))  # buffered: whole reads, as tar needs
        try:
            summary = loader.load(stream, manifest.source)
        finally:
            stream.close()
        check_stored(raw, manifest, base.name)
        env = secrets_of(job.target)
        env_file = os.path.join(datadir, ENV_FILE) if env else None
        if env_file:
            safefile.write_new(env_file, "".join(f"{k}={v}\n" for k, v in env.items()).encode())
        argv = fetch_argv(tiffin, job.target, job.target_options, base.label, env_file)
        lines = recovery_lines(restore_command(client_argv(argv)), to_time, job.to_lsn)
        with open(os.path.join(datadir, "postgresql.auto.conf"), "a", encoding="utf-8") as f:
            f.write("\n" + "\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        safefile.write_new(os.path.join(datadir, "recovery.signal"), b"")
        if user is not None:
            give(datadir, user)
        os.chmod(datadir, 0o700)
        _sync_dir(datadir)  # its new names, and (one journal) the owners given
    except BaseException:
        _clear(datadir, made)
        raise
    target_text = (
        f"recovers to {pitr.shown(to_time)}"
        if to_time is not None
        else f"recovers to {job.to_lsn}"
        if job.to_lsn
        else "recovers to the end of the archive"
    )
    return f"{summary}; {target_text}, then promotes"


def _sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _clear(datadir: str, made: bool) -> None:
    """Remove what a failed restore wrote into DATADIR (and DATADIR if it made it)."""
    if made:
        shutil.rmtree(datadir, ignore_errors=True)
        return
    for name in os.listdir(datadir) if os.path.isdir(datadir) else ():
        path = os.path.join(datadir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)

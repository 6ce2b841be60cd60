"""backup(job) and restore(job): Source.dump -> Codec.encode ... -> HashingReader -> Target.put,
and back: Target.open -> HashingReader -> Codec.decode ... -> Loader.load or a file."""

from __future__ import annotations

import errno
import io
import os
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from tiffin.catalog.backup import kind_of
from tiffin.catalog.holdings import free_name, previous_complete, read_manifest, resolve
from tiffin.catalog.manifest import Manifest
from tiffin.catalog.naming import MANIFEST_SUFFIX, check_name, make_name, parse_name
from tiffin.codecs import Codec, compressor
from tiffin.engine import lock, process, safefile
from tiffin.engine.prune import apply_policy
from tiffin.engine.stored import check_stored, decoded, decoders_for, verify_stored
from tiffin.engine.streams import BLOCK, Ahead, HashingReader, Prefetch, Reader
from tiffin.errors import (
    BackupFailed,
    Failed,
    IntegrityError,
    NotFound,
    OutputClosed,
    TiffinError,
    UsageError,
)
from tiffin.job import BackupJob, BackupResult, RestoreJob
from tiffin.sources import INTO, SOURCES
from tiffin.sources.base import Loader, Source
from tiffin.sources.identity import identity, key
from tiffin.targets import Target, connected


class RunFailed(Failed):
    """A backup (or restore) of a known NAME failed; str() is the reason."""

    def __init__(self, name: str, reason: TiffinError | str) -> None:
        super().__init__(f"Backup {name}", reason)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def codecs_for(job: BackupJob) -> list[Codec]:
    """Given a job, return its encoding stages in order: compression, then encryption."""
    stages: list[Codec] = [compressor(job.compress, job.compress_level, job.compress_threads)]
    if job.encrypt_to:
        from tiffin.codecs.age import AgeCodec

        stages.append(AgeCodec(recipients=job.encrypt_to))
    return stages


def backup(
    job: BackupJob,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    watch: Callable[[io.RawIOBase], io.RawIOBase] | None = None,
) -> BackupResult:
    """Given a job, run the backup and return its result. Raise RunFailed (naming the backup)
    if anything fails; nothing is then left under the backup's name, and no manifest. WATCH,
    if given, wraps the reader of the stored bytes (a progress line counts them)."""
    started = now()
    process.set_patience(job.target_options.timeout)  # bounds every wait on the source too

    def name_of(when: datetime) -> str:
        return make_name(job.label, job.source.what, when, job.compress, bool(job.encrypt_to))

    name = job.name or name_of(started)
    source = SOURCES[job.source.what].source(job.source)
    where = job.target.redacted()
    try:
        # One run at a time per label, source kind, source and target (see tiffin/engine/lock.py).
        held = lock.hold(job.label, job.source.what, where, key(identity(job.source)) or "")
    except TiffinError as exc:
        raise RunFailed(name, exc) from exc
    with held:
        claim = None
        try:
            with connected(job.target, job.target_options) as target:
                try:
                    if not job.name:
                        name, claim = free_name(target, where, started, name_of)
                    return _backup(job, name, started, source, target, now, watch)
                except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM mapped to it by the CLI
                    process.kill_all()
                    raise RunFailed(
                        name, "interrupted; stopped and cleaned up, nothing was published"
                    ) from exc
                finally:
                    if claim is not None:
                        claim.close()
        except (UsageError, RunFailed):
            raise
        except TiffinError as exc:
            raise RunFailed(name, exc) from exc


def _backup(
    job: BackupJob,
    name: str,
    started: datetime,
    source: Source,
    target: Target,
    now: Callable[[], datetime],
    watch: Callable[[io.RawIOBase], io.RawIOBase] | None = None,
) -> BackupResult:
    if target.stat(name) is not None:
        raise BackupFailed(f"{name} exists already at the target; tiffin never overwrites a backup")
    details = source.prepare()
    parsed = parse_name(name)
    ident = identity(job.source)
    kind = parsed.kind if parsed else ""
    stream: Reader = source.open()
    try:
        # Blocks pass from stage to stage as they are (Prefetch.read hands on the block it
        # holds): no buffered reader in between, which would copy every byte twice a stage.
        stream = stream if isinstance(stream, Ahead) else Prefetch(stream)
        for codec in codecs_for(job):
            encoded = codec.encode(stream)
            stream = stream if encoded is stream else Prefetch(encoded)  # none: no thread
        hashing = HashingReader(stream, beside=True)
        stream = hashing  # closed below: its thread ends, then the stages it reads
        upload: io.RawIOBase = watch(hashing) if watch else hashing
        stored = target.put(name, upload)
    except BaseException:
        # A dump tool that sends nothing (waiting for a lock, its server hung) keeps a
        # prefetch thread inside a read that holds its reader's lock, and closing the stream
        # would wait for it forever: end the dump first (on SIGTERM, Ctrl-C, any failure).
        process.kill_all()
        raise
    finally:
        stream.close()
    if stored.size != hashing.size:
        target.remove(name)
        raise IntegrityError(f"the target stored {stored.size} bytes of {hashing.size} sent")
    try:  # after the dump, not before: its start waits for nothing it does not need
        previous = previous_complete(target, job.label, job.source.what, kind, key(ident))
    except BaseException:
        target.remove(name)
        raise
    try:
        details = {**details, **source.finish(), "identity": ident}
    except BaseException:
        target.remove(name)  # what the manifest must record is unknown: nothing is published
        raise
    finished = now()
    manifest = Manifest(
        name=name,
        what=job.source.what,
        label=job.label,
        started=_iso(started),
        finished=_iso(finished),
        size=hashing.size,
        sha256=hashing.sha256,
        compression=job.compress,
        parts=stored.parts,
        encryption=job.encrypt_to,
        source=details,
    )
    try:
        target.put(name + MANIFEST_SUFFIX, io.BytesIO(manifest.to_json()))
    except BaseException:
        target.remove(name)
        raise
    warnings = list(source.warnings())
    pruned: tuple[str, ...] = ()
    if job.retention.any():
        pruned, problem = prune_after_backup(target, job)
        if problem:
            warnings.append(problem)
    return BackupResult(
        name=name,
        what=job.source.what,
        label=job.label,
        target=job.target.redacted(),
        size=hashing.size,
        started=started,
        finished=finished,
        consistency=details.get("consistency"),
        warnings=tuple(warnings),
        previous_size=previous.size if previous else None,
        manifest=manifest,
        pruned=pruned,
    )


def prune_after_backup(target: Target, job: BackupJob) -> tuple[tuple[str, ...], str | None]:
    """Given the target a backup was just published to, apply the job's --keep-* policy to the
    job's LABEL, WHAT and source. Return the names deleted and, if pruning failed, why: the
    backup itself is complete either way, so a failed prune is a warning, not a failed one."""
    try:
        source = key(identity(job.source))
        decisions = apply_policy(target, job.retention, job.label, job.source.what, source=source)
    except TiffinError as exc:
        return (), f"the backup is complete, but pruning old backups failed: {exc}"
    gone = tuple(d.name for d in decisions if not d.keep)
    if job.source.what != "pgbase":
        return gone, None
    from tiffin.engine import walview  # the WAL archive's modules: 0.02 s a run otherwise

    try:  # and the archived WAL no kept base backup needs (SPEC §6)
        wal = walview.prune_after(
            job.target, job.target_options, target, set(gone), job.label, False
        )
    except TiffinError as exc:
        return gone, f"the backup is complete, but pruning old WAL failed: {exc}"
    return (*gone, *(line.removeprefix("deleted ") for line in wal)), None


# ---------------------------------------------------------------- restore


@dataclass(frozen=True)
class RestoreResult:
    name: str
    summary: str
    seconds: float


def restore(job: RestoreJob, loader: Loader | None = None) -> RestoreResult:
    """Given a restore job, load or write the backup (with LOADER, if given: else the one of
    --into). Raise a TiffinError if anything fails."""
    t0 = time.monotonic()
    process.set_patience(job.target_options.timeout)  # bounds every wait on the server too
    if job.into and job.into not in INTO:
        raise UsageError(f"--into takes one of {', '.join(INTO)}")
    if loader is None and job.into:
        loader = INTO[job.into].loader(job)
    with connected(job.target, job.target_options) as target:
        # `latest --into pgsql` is the newest dump, never a base backup beside it.
        kind = kind_of(INTO[job.into].what) if job.into else None
        name = check_name(resolve(target, job.name, source=job.source_id, kind=kind))
        decoders_for(name, job.identity)  # bad name or missing identity: before any transfer
        if target.stat(name) is None:
            raise NotFound(f"there is no backup named {name} at {job.target.redacted()}")
        manifest: Manifest | None
        try:
            manifest = read_manifest(target, name)
        except NotFound:
            if not job.force:
                raise BackupFailed(
                    f"{name} has no manifest: it is incomplete; add --force to restore it anyway"
                ) from None
            manifest = None
        details: dict[str, Any] = manifest.source if manifest else {}
        if loader is not None:
            loader.check(details)
            staged = bool(getattr(loader, "staged", False))  # see Loader
            if manifest is not None and not staged:
                # Check every byte before the first one is loaded into a live server.
                verify_stored(target, name, manifest)
            raw, stream = decoded(target, name, manifest, job.identity)
            if staged:
                stream = _CheckedAtEnd(stream, lambda: check_stored(raw, manifest, name))
            try:
                summary = loader.load(stream, details)
            finally:
                stream.close()
            check_stored(raw, manifest, name)
        else:
            summary = _write_output(target, name, manifest, job)
    return RestoreResult(name, summary, time.monotonic() - t0)


class _CheckedAtEnd:
    """A reader that runs CHECK when INNER reaches its end, before it returns that end."""

    def __init__(self, inner: Reader, check: Callable[[], None]) -> None:
        self.inner, self.check, self._done = inner, check, False

    def read(self, size: int = -1, /) -> bytes:
        data = self.inner.read(size)
        if not data and not self._done:
            self._done = True
            self.check()
        return data

    def close(self) -> None:
        self.inner.close()


def _copy(stream: Reader, sink: BinaryIO) -> None:
    while data := stream.read(BLOCK):
        sink.write(data)
    sink.flush()


def _write_output(target: Target, name: str, manifest: Manifest | None, job: RestoreJob) -> str:
    out = job.output or "-"
    raw, stream = decoded(target, name, manifest, job.identity)
    try:
        if out == "-":
            if sys.stdout is None:  # started with standard output closed (>&-)
                raise BackupFailed("standard output is closed: give --output FILE")
            try:
                _copy(stream, sys.stdout.buffer)
            except BrokenPipeError:
                raise OutputClosed("standard output was closed") from None
            check_stored(raw, manifest, name)
            return "written to standard output"
        path = os.path.abspath(os.path.expanduser(out))
        if _is_stream(path):
            return _write_into(path, raw, stream, manifest, name)
        if os.path.lexists(path) and not job.overwrite:
            raise BackupFailed(f"{path} exists; add --overwrite to replace it")
        temp = path + ".partial"
        try:
            fd = safefile.create(temp)  # nothing planted at NAME.partial is written through
        except OSError as exc:
            raise BackupFailed(f"cannot write {temp}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                _copy(stream, f)
                os.fsync(f.fileno())
            check_stored(raw, manifest, name)
            if job.overwrite:
                os.replace(temp, path)  # replaces a link itself, never its target
            else:
                os.link(temp, path)  # refuses a name that appeared meanwhile
        except FileExistsError:
            raise BackupFailed(f"{path} appeared while writing; add --overwrite") from None
        except OSError as exc:
            raise BackupFailed(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            if os.path.lexists(temp):
                os.unlink(temp)
        return f"written to {path}"
    finally:
        stream.close()


def _is_stream(path: str) -> bool:
    """Given --output's path, return True if it is a character device or a pipe, which the
    dump is written into as `> PATH` would (never replaced by a file). Raise BackupFailed if
    it is a block device, a socket, a directory, or a link to anything but a file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise BackupFailed(f"cannot write {path}: {exc.strerror or exc}") from None
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        return True
    if stat.S_ISLNK(st.st_mode):
        try:
            linked = os.stat(path)
        except OSError:
            return False  # a dangling link: replaced with --overwrite, like a file
        if stat.S_ISREG(linked.st_mode):
            return False
        raise BackupFailed(
            f"{path} is a link to a device, pipe or folder, never written through or "
            "replaced: give the device itself, or - for standard output"
        )
    if stat.S_ISDIR(st.st_mode):
        raise BackupFailed(f"{path} is a folder: give a file name")
    if not stat.S_ISREG(st.st_mode):
        raise BackupFailed(f"{path} is a block device or a socket: give a file name")
    return False


def _write_into(
    path: str, raw: HashingReader, stream: Reader, manifest: Manifest | None, name: str
) -> str:
    """Write the restored dump into the character device or pipe at PATH."""
    try:
        # Non-blocking to open: a pipe no process reads is refused (ENXIO), not waited on.
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb") as sink:
            _copy(stream, sink)
    except BrokenPipeError:
        raise OutputClosed(f"{path} was closed") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise BackupFailed(f"cannot write {path}: it is a pipe that no process reads") from None
        raise BackupFailed(f"cannot write {path}: {exc.strerror or exc}") from None
    check_stored(raw, manifest, name)
    return f"written to {path}"

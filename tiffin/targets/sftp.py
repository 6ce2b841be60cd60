"""A folder on an SSH server over SFTP: pipelined NAME.partial, size check, no-overwrite rename."""

from __future__ import annotations

import io
import logging
import os
import posixpath
import stat as statmod
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

import paramiko
from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY

from tiffin.catalog.naming import PARTIAL_SUFFIX
from tiffin.engine.process import which
from tiffin.engine.streams import BLOCK, Reader
from tiffin.errors import AlreadyExists, NotFound, TargetError, UsageError
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets import sshpipe, sshtransport
from tiffin.targets.base import Entry, Stored
from tiffin.targets.sftpbits import _FAILURES, Link, _entry, _quiet_prefetch, _reason, _write_size
from tiffin.targets.sftpwrite import Uploader
from tiffin.targets.sshkeys import key_files, known_hosts_file, load_keys, open_to_others
from tiffin.urls import host_text

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger("tiffin")

# Bytes per SFTP write: the 32 KiB every server takes, else what the server's limits@openssh.com
# extension allows, up to 255 KiB (OpenSSH's sftp-server takes messages of up to 256 KiB,
# sftp-common.h SFTP_MAX_MSG_LENGTH): 1.6 x the throughput at two thirds of the CPU. An
# OpenSSH server too old to say its limits is known by its banner on paramiko's transport.
SFTP_REQUEST = 32 << 10
OPENSSH_REQUEST = 255 << 10
# Which client carries the SSH session: auto (OpenSSH's ssh when on PATH), openssh, paramiko.
CLIENT_VARIABLE = "TIFFIN_SSH_CLIENT"
READ_AHEAD = 8 << 20  # bytes a reader prefetches; its memory stays bounded by this


class SFTPTarget:
    """A folder on an SSH server. Construction connects, through OpenSSH's ssh (sshpipe) or
    paramiko's transport (sshtransport): see sshkeys for the keys and the host keys."""

    def __init__(self, url: TargetURL, options: TargetOptions) -> None:
        self.host = url.host
        self.port = url.port or 22
        self.where = f"{host_text(self.host)}:{self.port}"
        self.user = url.user or ""
        self.timeout = options.timeout
        self.mode = options.mode
        self._hung = False  # a request timed out: no second wait to clean up
        if not log.isEnabledFor(logging.DEBUG):  # its thread logs tracebacks: --debug only
            logging.getLogger("paramiko").setLevel(logging.CRITICAL + 1)
        self._options = options
        self._key_files: list[str] | None = None
        self._keys: list[paramiko.PKey] | None = None
        self._link: Link | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._request_size = SFTP_REQUEST
        sftp = self._client()
        with self._errors("finding the login's home folder"):
            home = sftp.normalize(".")
        self.dir = posixpath.normpath(posixpath.join(home, url.path)) if url.path else home
        self._dir_made = False

    def _connect(self) -> paramiko.SFTPClient:
        ssh = self._openssh_client()
        if ssh is None or self._key_files is None:
            if self._keys is None:
                self._keys = load_keys(self._options)
            sftp, self._link = sshtransport.connect(
                self.host, self.port, self.where, self.user, self._keys, self.timeout
            )
        else:
            argv = sshpipe.ssh_command(
                ssh,
                self.host,
                self.port,
                self.user,
                self._key_files,
                bool(self._options.ssh_key),
                known_hosts_file(),
                self.timeout,
            )
            sftp, self._link = sshpipe.connect(
                argv, self.host, self.port, self.where, self.user, self.timeout
            )
        self._request_size = _write_size(sftp, self._link, SFTP_REQUEST, OPENSSH_REQUEST)
        return sftp

    def _openssh_client(self) -> str | None:
        """Return the path of OpenSSH's ssh when it carries the session (see CLIENT_VARIABLE),
        or None for paramiko's transport. Raise UsageError if the variable is wrong."""
        choice = os.environ.get(CLIENT_VARIABLE, "auto")
        if choice not in ("auto", "openssh", "paramiko"):
            raise UsageError(f"{CLIENT_VARIABLE} must be auto, openssh or paramiko, not {choice!r}")
        ssh = which("ssh") if choice != "paramiko" else None
        if choice == "openssh" and ssh is None:
            raise UsageError(f"{CLIENT_VARIABLE}=openssh, but there is no ssh on PATH")
        if ssh is None:
            return None
        if self._key_files is None:
            self._key_files = key_files(self._options)
        loose = [path for path in self._key_files if open_to_others(path)]
        if loose and choice == "openssh":
            raise UsageError(
                f"ssh refuses the key {loose[0]}: others may read it; make it yours alone with: "
                f"chmod 600 {loose[0]}"
            )
        odd = sshpipe.unreadable(self._key_files, known_hosts_file())
        if odd and choice == "openssh":
            raise UsageError(
                f"ssh would not open {odd} as named (% or ${{ in it): unset {CLIENT_VARIABLE}"
            )
        if loose or odd or "%" in self.host:  # ssh would take an IPv6 zone's % for a token
            log.info(
                "SSH through paramiko: ssh would refuse %s", loose[0] if loose else odd or self.host
            )
            return None
        return ssh

    def _client(self) -> paramiko.SFTPClient:
        """Return the SFTP session, connecting again if the last one broke."""
        if self._sftp is None or self._link is None or not self._link.alive():
            self.close(abort=True)
            self._sftp = self._connect()
        return self._sftp

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn SFTP refusals and broken connections into one TargetError sentence."""
        try:
            yield
        except _FAILURES as exc:
            link = self._link
            alive = link is not None and link.alive()
            self._hung = self._hung or isinstance(exc, TimeoutError)
            if alive and type(exc) in (OSError, FileNotFoundError, PermissionError):
                raise TargetError(
                    f"the SSH server at {self.where} refused {doing}: {_reason(exc)}"
                ) from None
            why = (link.why_broken() if link is not None else None) or _reason(exc)
            self.close(abort=True)  # a late answer would be taken for the next request's
            raise TargetError(
                f"the connection to the SSH server at {self.where} broke while {doing}: {why}"
            ) from None

    def _path(self, name: str) -> str:
        return posixpath.join(self.dir, name)

    def _exists(self, path: str) -> bool:
        try:
            self._client().stat(path)
        except FileNotFoundError:
            return False
        return True

    def _ensure_dir(self) -> None:
        if self._dir_made:
            return
        sftp = self._client()
        with self._errors(f"creating the folder {self.dir}"):
            prefix = "/" if self.dir.startswith("/") else ""
            for part in filter(None, self.dir.split("/")):
                prefix = posixpath.join(prefix, part)
                if not self._exists(prefix):
                    try:
                        sftp.mkdir(prefix, 0o700)
                    except OSError:
                        if not self._exists(prefix):  # else another run made it meanwhile
                            raise
        self._dir_made = True

    def put(self, name: str, reader: Reader, replace: bool = False) -> Stored:
        final = self._path(name)
        temp = final + PARTIAL_SUFFIX
        self._hung = False
        self._ensure_dir()
        sftp = self._client()
        with self._errors(f"checking for {name}"):
            if not replace and self._exists(final):
                raise AlreadyExists(f"{final} exists already; tiffin never overwrites a backup")
            if self._exists(temp):
                raise AlreadyExists(f"{temp} exists: is another run writing {name}?")
            out = sftp.open(temp, "wbx")
        written = 0
        try:
            with self._errors(f"storing {name}"):
                out.chmod(self.mode)
            handle: bytes = getattr(out, "handle")  # noqa: B009 (bytes, whatever the stubs say)
            upload = Uploader(sftp, handle, self._request_size)
            while data := reader.read(BLOCK):
                with self._errors(f"storing {name}"):
                    upload.write(data)
                written += len(data)
            with self._errors(f"storing {name}"):
                upload.finish()  # every write answered
                out.close()
                stored = sftp.stat(temp).st_size
            if stored != written:
                raise TargetError(f"{temp} holds {stored} bytes, {written} were written")
            with self._errors(f"publishing {name}"):
                try:
                    if replace:
                        self._rename_over(temp, final)
                    else:  # plain SFTP rename refuses an existing target (posix-rename not)
                        sftp.rename(temp, final)
                except OSError:
                    if replace:
                        raise
                    if self._exists(final):
                        raise AlreadyExists(f"{final} appeared while writing") from None
                    raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):  # it may have struck mid-request: the
                self.close(abort=True)  # session is out of step: closing the file would wait
            with suppress(*_FAILURES):
                out.close()
            full = self._free_space() if isinstance(exc, TargetError) else None
            self._discard(temp)
            if full is not None and full < BLOCK:  # SFTP's "Failure" does not say why
                raise TargetError(
                    f"the SSH server's disk is full at {self.where} ({full} bytes free in "
                    f"{self.dir})"
                ) from None
            raise
        return Stored(written)

    def _rename_over(self, temp: str, final: str) -> None:
        """Rename TEMP to FINAL, replacing it: by OpenSSH's posix-rename where the server has
        it (atomic), else by removing FINAL first."""
        sftp = self._client()
        try:
            sftp.posix_rename(temp, final)
        except OSError:
            if not self._exists(temp):
                raise
            with suppress(FileNotFoundError):
                sftp.remove(final)
            sftp.rename(temp, final)

    def _free_space(self) -> int | None:
        """Return the bytes free for us in the folder (OpenSSH's statvfs extension), or None
        if the server cannot tell."""
        if self._hung or self._sftp is None:
            return None
        try:
            request = getattr(self._sftp, "_request")  # noqa: B009 (private, not in the stubs)
            kind, msg = request(CMD_EXTENDED, "statvfs@openssh.com", self.dir)
            if kind != CMD_EXTENDED_REPLY:
                return None
            _bsize, frsize, _blocks, _bfree, bavail = (msg.get_int64() for _ in range(5))
        except (*_FAILURES, AttributeError):
            return None
        return int(frsize * bavail)

    def _discard(self, temp: str) -> None:
        if self._hung:  # waiting for a hung server again would double the wait: prune removes it
            log.warning("%s on %s is left for prune: the server does not answer", temp, self.where)
            return
        try:
            self._client().remove(temp)
        except FileNotFoundError:
            pass
        except (TargetError, *_FAILURES) as exc:
            log.warning("could not remove %s on %s: %s", temp, self.where, exc)

    def open(self, name: str) -> Reader:
        path = self._path(name)
        sftp = self._client()
        with self._errors(f"reading {name}"):
            try:
                size = sftp.stat(path).st_size or 0
                handle = sftp.open(path, "rb")
            except FileNotFoundError:
                raise NotFound(f"no backup named {name} in {self.dir} on {self.where}") from None
        _quiet_prefetch(handle)
        return io.BufferedReader(_Download(self, handle, name, size), BLOCK)

    def list(self) -> list[Entry]:
        entries: list[Entry] = []
        with self._errors(f"listing {self.dir}"):
            try:
                attrs = self._client().listdir_attr(self.dir)
            except FileNotFoundError:
                return entries
        for a in attrs:
            if a.st_mode is None or statmod.S_ISREG(a.st_mode):
                partial = a.filename.endswith(PARTIAL_SUFFIX)
                fname = a.filename[: -len(PARTIAL_SUFFIX)] if partial else a.filename
                entries.append(_entry(fname, a, partial))
        return entries

    def stat(self, name: str) -> Entry | None:
        with self._errors(f"looking for {name}"):
            try:
                a = self._client().stat(self._path(name))
            except FileNotFoundError:
                return None
        return _entry(name, a)

    def remove(self, name: str) -> None:
        with self._errors(f"removing {name}"), suppress(FileNotFoundError):
            self._client().remove(self._path(name))

    def close(self, abort: bool = False) -> None:
        """End the session; with ABORT at once, waiting on nothing."""
        sftp, self._sftp = self._sftp, None
        link, self._link = self._link, None
        if link is not None:
            link.close(abort)
        elif sftp is not None:
            sftp.close()


class _Download(io.RawIOBase):
    """An SFTP file as a reader that keeps READ_AHEAD bytes of requests in flight, and
    raises TargetError when fewer bytes arrive than stat reported."""

    def __init__(self, target: SFTPTarget, handle: paramiko.SFTPFile, name: str, size: int) -> None:
        super().__init__()
        self.target, self.handle, self.name, self.size = target, handle, name, size
        self._asked = 0  # bytes requested so far
        self._count = 0
        self._blocks: Iterator[bytes] = iter(())
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _next_block(self) -> bytes:
        block = next(self._blocks, None)
        if block is None:
            if self._asked >= self.size:
                return b""
            end = min(self.size, self._asked + READ_AHEAD)
            chunks = [(o, min(BLOCK, end - o)) for o in range(self._asked, end, BLOCK)]
            self._asked = end
            self._blocks = iter(self.handle.readv(chunks))
            block = next(self._blocks, b"")
        return block

    def readinto(self, b: WriteableBuffer) -> int:
        out = memoryview(b)
        if not self._buf:
            with self.target._errors(f"reading {self.name}"):
                block = self._next_block()
            if not block:
                if self._count != self.size:
                    raise TargetError(
                        f"only {self._count} of the {self.size} bytes of {self.name} arrived "
                        f"from {self.target.where}"
                    )
                return 0
            self._count += len(block)
            self._buf = memoryview(block)
        n = min(len(out), len(self._buf))
        out[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            with suppress(*_FAILURES):
                self.handle.close()
        super().close()

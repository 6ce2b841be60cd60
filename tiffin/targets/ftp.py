"""A folder on an FTP or FTPS (explicit TLS) server: STOR to NAME.partial, SIZE check, rename."""

from __future__ import annotations

import ftplib
import io
import logging
import posixpath
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime

from tiffin.catalog.naming import PARTIAL_SUFFIX
from tiffin.engine.streams import BLOCK, Reader
from tiffin.errors import AlreadyExists, NotFound, TargetError, UsageError
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets.base import Entry, Stored
from tiffin.targets.ftpauth import find_password
from tiffin.targets.ftpread import _FAILURES, _Download
from tiffin.urls import host_text

log = logging.getLogger("tiffin")


def _code(exc: BaseException) -> str:
    return str(exc)[:3]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, EOFError | ssl.SSLEOFError):
        return "the server closed the connection"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _mtime(stamp: str) -> float | None:
    try:
        return datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


class _Source:
    """Counts what the reader gave and keeps the exception it raised, so that a failure of
    the stream is told apart from a failure of the server."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.count = 0
        self.error: BaseException | None = None

    def read(self, size: int = -1, /) -> bytes:
        try:
            data = self.reader.read(size)
        except BaseException as exc:
            self.error = exc
            raise
        self.count += len(data)
        return data


class FTPTarget:
    """A folder on an FTP(S) server. Construction logs in: see find_password and _connect."""

    def __init__(self, url: TargetURL, options: TargetOptions) -> None:
        self.tls = url.kind == "ftps"
        self.host = url.host
        self.port = url.port or 21
        self.where = f"{host_text(self.host)}:{self.port}"
        self.user = url.user or ""
        self.timeout = options.timeout
        self.insecure = options.insecure
        self._password = find_password(url)
        # FTP commands are lines: ftplib refuses a CR, LF or NUL in any of them.
        for what, text in (("user", self.user), ("password", self._password), ("path", url.path)):
            if any(c in text for c in "\r\n\0"):
                raise UsageError(
                    f"the FTP {what} holds a line break or a NUL, which FTP cannot send"
                )
        ftp = self._connect()
        self._ftp: ftplib.FTP | None = ftp
        with self._errors("finding the login's home folder"):
            home = ftp.pwd()
            self._mlsd = self._has_mlsd(ftp)
        self.dir = posixpath.normpath(posixpath.join(home, url.path)) if url.path else home
        self._dir_made = False

    def _connect(self) -> ftplib.FTP:
        """Return a logged-in connection (TLS on control and data for ftps). Raise TargetError
        if the server cannot be reached, its certificate is not trusted, or it refuses us."""
        ftp: ftplib.FTP
        if self.tls:
            ftp = ftplib.FTP_TLS(context=self._tls_context(), timeout=self.timeout)  # noqa: S321
        else:
            ftp = ftplib.FTP(timeout=self.timeout)  # noqa: S321  plain FTP is the user's choice
        try:
            try:
                ftp.connect(self.host, self.port, timeout=self.timeout)
            except (OSError, EOFError) as exc:
                why = _reason(exc)
                raise TargetError(f"cannot reach the FTP server at {self.where}: {why}") from None
            if isinstance(ftp, ftplib.FTP_TLS):
                try:
                    ftp.auth()
                except ssl.SSLCertVerificationError as exc:
                    raise TargetError(
                        f"the FTPS server's certificate at {self.where} cannot be trusted "
                        f"({exc.verify_message}): add --insecure only if you trust it"
                    ) from None
                except ftplib.Error as exc:
                    raise self._explain(exc, "TLS (AUTH TLS)") from None
            ftp.login(self.user, self._password)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
            ftp.voidcmd("TYPE I")
        except BaseException as exc:
            ftp.close()
            if isinstance(exc, ftplib.error_perm) and _code(exc) == "530":
                raise TargetError(
                    f"the FTP server at {self.where} refused the login for {self.user}"
                ) from None
            if isinstance(exc, _FAILURES):
                raise self._explain(exc, "logging in") from None
            raise
        return ftp

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()  # honours SSL_CERT_FILE and SSL_CERT_DIR
        if self.insecure:
            log.warning("the certificate of %s is not checked (--insecure)", self.where)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _explain(self, exc: BaseException, doing: str) -> TargetError:
        if isinstance(exc, ftplib.Error):
            reply = str(exc)
            if len(self._password) > 2:  # a server may echo what it was sent
                reply = reply.replace(self._password, "***")
            if _code(exc) in ("452", "552") or "no space left" in reply.lower():
                return TargetError(f"the FTP server's disk is full at {self.where} ({reply})")
            if _code(exc) == "426" and doing.startswith("storing"):
                return TargetError(
                    f"the FTP server at {self.where} aborted {doing} ({reply}): it could not "
                    "write it, a full disk or a quota being the usual cause"
                )
            return TargetError(f"the FTP server at {self.where} refused {doing}: {reply}")
        return TargetError(
            f"the connection to the FTP server at {self.where} failed while {doing}: "
            + _reason(exc)
        )

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn the server's refusals and broken connections into one TargetError sentence."""
        try:
            yield
        except _FAILURES as exc:
            if not isinstance(exc, ftplib.Error):
                self._drop()
            raise self._explain(exc, doing) from None

    def _conn(self) -> ftplib.FTP:
        if self._ftp is None:
            self._ftp = self._connect()
        return self._ftp

    def _drop(self) -> None:
        """Forget the control connection: after a broken transfer its replies are out of step."""
        ftp, self._ftp = self._ftp, None
        if ftp is not None:
            ftp.close()

    @staticmethod
    def _has_mlsd(ftp: ftplib.FTP) -> bool:
        try:
            features = ftp.sendcmd("FEAT")
        except ftplib.Error:
            return False
        return any(line.strip().upper().startswith("MLST") for line in features.splitlines())

    def _path(self, name: str) -> str:
        return posixpath.join(self.dir, name)

    def _size(self, path: str) -> int | None:
        """Return the size of the file PATH, None if there is none."""
        ftp = self._conn()
        ftp.voidcmd("TYPE I")  # SIZE is refused in ASCII mode
        try:
            size = ftp.size(path)
        except ftplib.error_perm as exc:
            if _code(exc) == "550":
                return None
            if not self._mlsd or _code(exc) not in ("500", "502", "504"):
                raise  # without SIZE, sizes come from MLSD
            found = [e for e in self.list() if e.name == posixpath.basename(path)]
            return found[0].size if found else None
        return size

    def _ensure_dir(self) -> None:
        if self._dir_made:
            return
        ftp = self._conn()
        with self._errors(f"creating the folder {self.dir}"):
            try:
                ftp.cwd(self.dir)
            except ftplib.error_perm:
                prefix = "/" if self.dir.startswith("/") else ""
                for part in filter(None, self.dir.split("/")):
                    prefix = posixpath.join(prefix, part)
                    if _is_dir(ftp, prefix):
                        continue
                    try:
                        ftp.mkd(prefix)
                    except ftplib.error_perm:
                        if not _is_dir(ftp, prefix):  # else another run made it meanwhile
                            raise
        self._dir_made = True

    def put(self, name: str, reader: Reader, replace: bool = False) -> Stored:
        final = self._path(name)
        temp = final + PARTIAL_SUFFIX
        self._ensure_dir()
        with self._errors(f"checking for {name}"):
            if not replace and self._size(final) is not None:
                raise AlreadyExists(f"{final} exists already; tiffin never overwrites a backup")
            if self._size(temp) is not None:
                raise AlreadyExists(f"{temp} exists: is another run writing {name}?")
        source = _Source(reader)
        sent = False
        try:
            ftp = self._conn()
            ftp.storbinary(f"STOR {temp}", source, blocksize=BLOCK)
            sent = True
            stored = self._size(temp)
            if stored != source.count:
                raise TargetError(f"{temp} holds {stored} bytes, {source.count} were sent")
            if replace:
                self._rename_over(temp, final)
            elif self._size(final) is not None:
                raise AlreadyExists(f"{final} appeared while writing; not overwritten")
            else:
                ftp.rename(temp, final)
        except BaseException as exc:
            hung = isinstance(exc, TimeoutError)
            late = None if sent or hung or exc is source.error else self._late_reply(exc)
            if not sent:  # the transfer's last reply may still be on its way
                self._drop()
            if hung:  # a second wait to remove the leftover would double it: prune removes it
                log.warning("%s on %s is left for prune: no answer in time", temp, self.where)
            else:
                self._discard(temp)
            if exc is source.error or not isinstance(exc, _FAILURES):
                raise
            raise self._explain(late or exc, f"storing {name}") from None
        return Stored(source.count)

    def _rename_over(self, temp: str, final: str) -> None:
        """Rename TEMP to FINAL, replacing it: most servers rename over a file (a rename(2));
        to one that refuses, FINAL is deleted first."""
        ftp = self._conn()
        try:
            ftp.rename(temp, final)
        except ftplib.error_perm:
            if self._size(final) is None:
                raise
            ftp.delete(final)
            ftp.rename(temp, final)

    def _late_reply(self, exc: BaseException) -> ftplib.Error | None:
        """After EXC cut the data connection of a STOR, return the server's reply to the STOR
        (a 426 or 452 that says why, e.g. a full disk), or None."""
        ftp = self._ftp
        if not isinstance(exc, OSError | EOFError) or ftp is None or ftp.sock is None:
            return None
        try:
            ftp.sock.settimeout(min(self.timeout, 5.0))
            ftp.getresp()
        except ftplib.Error as reply:
            return reply
        except (OSError, EOFError):
            pass
        return None

    def _discard(self, temp: str) -> None:
        try:
            self._conn().delete(temp)
        except (TargetError, *_FAILURES) as exc:
            if _code(exc) != "550":  # 550: there is no such file
                log.warning("could not remove %s on %s: %s", temp, self.where, exc)
                self._drop()

    def open(self, name: str) -> Reader:
        path = self._path(name)
        with self._errors(f"looking for {name}"):
            size = self._size(path)
        if size is None:
            raise NotFound(f"no backup named {name} in {self.dir} on {self.where}")
        # A connection of its own: the reader may be read while other calls are made.
        ftp = self._connect()
        try:
            ftp.voidcmd("TYPE I")
            conn = ftp.transfercmd(f"RETR {path}")
        except _FAILURES as exc:
            ftp.close()
            if _code(exc) == "550":
                raise NotFound(f"no backup named {name} in {self.dir} on {self.where}") from None
            raise self._explain(exc, f"reading {name}") from None
        return io.BufferedReader(_Download(self, ftp, conn, name, size), BLOCK)

    def list(self) -> list[Entry]:
        ftp = self._conn()
        entries: list[Entry] = []
        with self._errors(f"listing {self.dir}"):
            try:
                if self._mlsd:
                    for fname, facts in ftp.mlsd(self.dir, facts=["type", "size", "modify"]):
                        if facts.get("type", "file").lower() == "file":
                            mtime = _mtime(facts.get("modify", ""))
                            entries.append(_entry(fname, int(facts.get("size", 0)), mtime))
                    return entries
                names = [posixpath.basename(n) for n in ftp.nlst(self.dir)]
            except ftplib.error_perm:
                try:  # servers answer a missing folder with 550 or 501
                    ftp.cwd(self.dir)
                except ftplib.error_perm:
                    return entries
                raise
            for fname in names:
                size = self._size(self._path(fname))
                if size is not None:
                    entries.append(_entry(fname, size, self._mdtm(self._path(fname))))
        return entries

    def _mdtm(self, path: str) -> float | None:
        try:
            return _mtime(self._conn().sendcmd(f"MDTM {path}")[4:].strip())
        except ftplib.Error:
            return None

    def stat(self, name: str) -> Entry | None:
        path = self._path(name)
        with self._errors(f"looking for {name}"):
            size = self._size(path)
            return None if size is None else Entry(name, size, self._mdtm(path))

    def remove(self, name: str) -> None:
        path = self._path(name)
        with self._errors(f"removing {name}"):
            try:
                self._conn().delete(path)
            except ftplib.error_perm as exc:
                if _code(exc) != "550" or self._size(path) is not None:
                    raise

    def close(self) -> None:
        ftp, self._ftp = self._ftp, None
        if ftp is not None:
            with suppress(*_FAILURES):
                ftp.quit()
            ftp.close()


def _entry(fname: str, size: int, mtime: float | None) -> Entry:
    partial = fname.endswith(PARTIAL_SUFFIX)
    name = fname[: -len(PARTIAL_SUFFIX)] if partial else fname
    return Entry(name, size, mtime, partial)


def _is_dir(ftp: ftplib.FTP, path: str) -> bool:
    """Whether PATH is a folder the login can enter (it then is the working folder)."""
    try:
        ftp.cwd(path)
    except ftplib.error_perm:
        return False
    return True

"""Reading a file from an FTP server: a reader that says so when fewer bytes arrive than the
server listed."""

from __future__ import annotations

import ftplib
import io
import socket
import ssl
from typing import TYPE_CHECKING, Protocol

from tiffin.errors import TargetError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_FAILURES = (ftplib.Error, OSError, EOFError)


class _Explains(Protocol):
    """The FTP target, as a download sees it: where it is and how it words a failure."""

    where: str

    def _explain(self, exc: BaseException, doing: str) -> TargetError: ...


class _Download(io.RawIOBase):
    """RETR's data connection as a reader. At EOF the server's final reply must be 226 (or
    250) and the byte count SIZE's, so that a cut transfer raises instead of ending early."""

    def __init__(
        self, target: _Explains, ftp: ftplib.FTP, conn: socket.socket, name: str, size: int
    ) -> None:
        super().__init__()
        self.target, self.ftp, self.conn = target, ftp, conn
        self.name, self.size, self.count = name, size, 0
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        if self.done:
            return 0
        try:
            n = self.conn.recv_into(b)
            if n:
                self.count += n
                return n
            self.done = True
            if isinstance(self.conn, ssl.SSLSocket):
                self.conn.unwrap()
            self.conn.close()
            reply = self.ftp.voidresp()
        except _FAILURES as exc:
            self.done = True
            raise self.target._explain(exc, f"reading {self.name}") from None
        if reply[:3] not in ("226", "250"):
            raise TargetError(f"the FTP server at {self.target.where} ended {self.name}: {reply}")
        if self.count != self.size:
            raise TargetError(
                f"only {self.count} of the {self.size} bytes of {self.name} arrived from "
                f"{self.target.where}"
            )
        return 0

    def close(self) -> None:
        if not self.closed:
            self.conn.close()
            self.ftp.close()
        super().close()

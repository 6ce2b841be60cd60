"""A Source dumps one kind of data as a byte stream, and loads such a stream back."""

from __future__ import annotations

from typing import Any, Protocol

from tiffin.engine.streams import Reader


class Source(Protocol):
    """One kind of data (mysql, pgsql, sqlite, data).

    prepare() contacts the server (or reads the folder/file) before any byte is stored: it
    checks that the dump can be made, chooses how (consistency mode, client version), and
    returns the details recorded in the manifest under "source" (server version, databases,
    consistency used, extensions, table row counts ...). It never returns a secret. It raises
    BackupFailed (exit 1) for what the server says, UsageError (exit 2) for a bad option.

    open() starts the dump and returns a reader of its bytes. The reader raises ToolFailed
    (quoting the tool's last stderr lines) instead of returning EOF if the dump did not end
    well, at whatever point that happens; closing it before EOF stops the dump. Memory is
    bounded whatever the size. open() is called at most once, after prepare().

    finish() returns the details that were gathered while the dump ran (row counts taken
    beside it, so that they do not delay its start), to add to prepare()'s; called once, after
    the reader reached EOF and before the manifest is written. It never raises: what could
    not be gathered is left out and said by warnings().

    warnings() returns the non-fatal notes the dump produced (shown in the report), valid
    after finish().
    """

    what: str

    def prepare(self) -> dict[str, Any]: ...

    def open(self) -> Reader: ...

    def finish(self) -> dict[str, Any]: ...

    def warnings(self) -> list[str]: ...


class Loader(Protocol):
    """Loads a plain (decoded) dump back: restore --into KIND.

    check(details) is called before any byte is read, with the manifest's "source" details:
    it raises BackupFailed if the destination cannot take this backup (a missing extension,
    an existing file without --overwrite ...), naming what is missing.
    load(reader, details) consumes READER to its end and loads it; it raises ToolFailed /
    BackupFailed on any failure, and returns a one-line summary of what was restored.
    A loader whose class sets `staged = True` publishes nothing before READER's end (it
    unpacks aside, then moves into place): its reader raises IntegrityError at the end if the
    stored bytes do not match the manifest, and they are not read twice (verified first).
    """

    def check(self, details: dict[str, Any]) -> None: ...

    def load(self, reader: Reader, details: dict[str, Any]) -> str: ...


def address(host: str | None, port: int | None, socket: str | None) -> str:
    """Given where a database server listens, return it as one word: the socket's path, else
    HOST:PORT (an IPv6 address in brackets), else 'localhost' (the client's default)."""
    if socket:
        return socket
    name = host or "localhost"
    if ":" in name:
        name = f"[{name}]"
    return f"{name}:{port}" if port else name

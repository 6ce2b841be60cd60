"""A Target stores named byte streams in one folder (or key prefix) of one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tiffin.catalog.manifest import Part
from tiffin.engine.streams import Reader


@dataclass(frozen=True)
class Entry:
    """One stored object as the target lists it. `name` is the backup-level name: for s3multi
    the chunks of NAME are one entry NAME. `partial` marks a leftover temp (NAME.partial)."""

    name: str
    size: int
    mtime: float | None = None
    partial: bool = False


@dataclass(frozen=True)
class Stored:
    """What put() stored: the byte count it checked on the target after writing, and, for a
    chunked target, each part (name, size, sha256)."""

    size: int
    parts: tuple[Part, ...] = ()


class Target(Protocol):
    """Five verbs over one folder of one place, after restic's Backend.

    Every name is a plain file name (no '/'): the target joins it to its own folder.
    """

    def put(self, name: str, reader: Reader, replace: bool = False) -> Stored:
        """Store READER's bytes, read to EOF, under NAME.

        Raise AlreadyExists before reading anything if NAME is stored already; never overwrite.
        REPLACE (only ever for a drill record, NAME.drill.json: never a backup or a manifest)
        lifts that rule: NAME is replaced when published, atomically where the target can
        (a local rename, SFTP's posix-rename, an S3 PUT; an FTP server that will not rename
        over a file has it deleted first). A failure then leaves the old NAME or the new.
        Bytes go first to a temporary name (NAME.partial, or an uncompleted multipart upload).
        NAME is published only after READER returned EOF without raising and the size the
        target reports for what it stored equals the count read; otherwise the temporary is
        removed (best effort; a failure to remove it is logged) and the error propagates:
        an exception raised by READER unchanged, a failure of the target as TargetError.
        """
        ...

    def open(self, name: str) -> Reader:
        """Return a reader of NAME's stored bytes (a chunked NAME: its parts in order).
        Raise NotFound if NAME is not stored. The reader raises TargetError if the
        connection fails midway; a short read is never a silent EOF."""
        ...

    def list(self) -> list[Entry]:
        """Return every object in the folder, manifests and partial leftovers included, in no
        particular order. A missing folder lists as empty."""
        ...

    def stat(self, name: str) -> Entry | None:
        """Return NAME's entry, or None if NAME is not stored."""
        ...

    def remove(self, name: str) -> None:
        """Delete NAME (a chunked NAME: all its parts). Deleting what is absent is no error."""
        ...

    def close(self) -> None:
        """Release connections; idempotent."""
        ...

"""Sources by WHAT: the one registry of the family. Every list of WHATs a user reads (help,
errors, config validation, --into choices) is derived from KINDS; a new source is one module
and one line here (plus its file suffix in tiffin/catalog/naming.py BASE_EXT)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from tiffin.job import RestoreJob, SourceSpec
from tiffin.sources.base import Loader, Source
from tiffin.sources.directory import DirectoryLoader, DirectorySource
from tiffin.sources.mariabackup import MariabackupSource
from tiffin.sources.mysql import MySQLLoader, MySQLSource
from tiffin.sources.mysqldata import MysqlDataLoader
from tiffin.sources.pgbase import PgBaseSource, PgDataLoader
from tiffin.sources.postgresql import PostgresLoader, PostgresSource
from tiffin.sources.sqlite import SqliteLoader, SqliteSource

# Where a restore (and a drill) puts it: into a database server, a file, or a folder.
Lands = Literal["server", "file", "folder"]
LANDS_ORDER: tuple[Lands, ...] = ("server", "file", "folder")


@dataclass(frozen=True)
class SourceKind:
    """One WHAT: the name its manifest records, the other words a user may type for it, how
    it is dumped and loaded back, its name after --into, and where a restore of it lands."""

    what: str
    source: Callable[[SourceSpec], Source]
    loader: Callable[[RestoreJob], Loader]
    into: str
    lands: Lands
    aliases: tuple[str, ...] = ()
    physical_of: str | None = None  # the WHAT whose --physical backup this is (SPEC §6)


KINDS: tuple[SourceKind, ...] = (
    SourceKind("mysql", MySQLSource, MySQLLoader, "mysql", "server"),
    SourceKind(
        "pgsql", PostgresSource, PostgresLoader, "pgsql", "server", ("postgresql", "postgres")
    ),
    SourceKind("data", DirectorySource, DirectoryLoader, "dir", "folder"),
    SourceKind("sqlite", SqliteSource, SqliteLoader, "sqlite", "file"),
    SourceKind("pgbase", PgBaseSource, PgDataLoader, "pgdata", "folder", physical_of="pgsql"),
    SourceKind(
        "mariabackup",
        MariabackupSource,
        MysqlDataLoader,
        "mysqldata",
        "folder",
        physical_of="mysql",
    ),
)

SOURCES: dict[str, SourceKind] = {k.what: k for k in KINDS}
# The WHATs a user names (help and errors list these): a physical kind is named by its
# WHAT and --physical.
TYPED: tuple[str, ...] = tuple(k.what for k in KINDS if not k.physical_of)
# WHAT -> its physical kind (pgsql -> pgbase).
PHYSICAL: dict[str, SourceKind] = {k.physical_of: k for k in KINDS if k.physical_of}
# Every word a user may type for a WHAT -> the WHAT.
WHATS: dict[str, str] = {w: k.what for k in KINDS for w in (k.what, *k.aliases)}
# drill latest --physical: the newest physical backup of any kind at the target.
ANY_PHYSICAL = "physical"
# --into NAME -> its kind, listed as the help lists them: servers, then files, then folders.
INTO: dict[str, SourceKind] = {
    k.into: k for k in sorted(KINDS, key=lambda k: LANDS_ORDER.index(k.lands))
}


def spoken(words: Iterable[str], last: str = "or") -> str:
    """Given words, return them as a sentence says them: 'a, b, c or d'."""
    items = list(words)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


__all__ = [
    "INTO",
    "KINDS",
    "PHYSICAL",
    "SOURCES",
    "TYPED",
    "WHATS",
    "Loader",
    "Source",
    "SourceKind",
    "spoken",
]

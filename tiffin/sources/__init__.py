"""Sources by WHAT: the one registry of the family. Every list of WHATs a user reads (help,
errors, config validation, --into choices) is derived from KINDS; a new source is one module
and one line here (plus its file suffix in tiffin/catalog/naming.py BASE_EXT)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from tiffin.job import RestoreJob, SourceSpec
from tiffin.sources.base import Loader, Source

# A kind's module is imported when a source or loader of that kind is made, as the targets'
# are: a backup of one kind does not load the others (tarfile, sqlite3, the binlog and
# mariabackup readers), which cost every run about 0.05 s.
Classes = tuple[Callable[[SourceSpec], Source], Callable[[RestoreJob], Loader]]


def _mysql() -> Classes:
    from tiffin.sources.mysql import MySQLLoader, MySQLSource

    return MySQLSource, MySQLLoader


def _pgsql() -> Classes:
    from tiffin.sources.postgresql import PostgresLoader, PostgresSource

    return PostgresSource, PostgresLoader


def _data() -> Classes:
    from tiffin.sources.directory import DirectoryLoader, DirectorySource

    return DirectorySource, DirectoryLoader


def _sqlite() -> Classes:
    from tiffin.sources.sqlite import SqliteLoader, SqliteSource

    return SqliteSource, SqliteLoader


def _pgbase() -> Classes:
    from tiffin.sources.pgbase import PgBaseSource, PgDataLoader

    return PgBaseSource, PgDataLoader


def _mariabackup() -> Classes:
    from tiffin.sources.mariabackup import MariabackupSource
    from tiffin.sources.mysqldata import MysqlDataLoader

    return MariabackupSource, MysqlDataLoader


# Where a restore (and a drill) puts it: into a database server, a file, or a folder.
Lands = Literal["server", "file", "folder"]
LANDS_ORDER: tuple[Lands, ...] = ("server", "file", "folder")


@dataclass(frozen=True)
class SourceKind:
    """One WHAT: the name its manifest records, the other words a user may type for it, how
    it is dumped and loaded back (its classes, imported when first asked for), its name after
    --into, and where a restore of it lands."""

    what: str
    load: Callable[[], Classes]
    into: str
    lands: Lands
    aliases: tuple[str, ...] = ()
    physical_of: str | None = None  # the WHAT whose --physical backup this is (SPEC §6)

    def source(self, spec: SourceSpec) -> Source:
        """Given a spec of this kind, return its Source."""
        return self.load()[0](spec)

    def loader(self, job: RestoreJob) -> Loader:
        """Given a restore job into this kind, return its Loader."""
        return self.load()[1](job)


KINDS: tuple[SourceKind, ...] = (
    SourceKind("mysql", _mysql, "mysql", "server"),
    SourceKind("pgsql", _pgsql, "pgsql", "server", ("postgresql", "postgres")),
    SourceKind("data", _data, "dir", "folder"),
    SourceKind("sqlite", _sqlite, "sqlite", "file"),
    SourceKind("pgbase", _pgbase, "pgdata", "folder", physical_of="pgsql"),
    SourceKind("mariabackup", _mariabackup, "mysqldata", "folder", physical_of="mysql"),
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

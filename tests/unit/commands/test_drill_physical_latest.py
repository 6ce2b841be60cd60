"""`drill HOW WHERE latest --physical` with no --into, now that there are two physical kinds
(pgsql base backups, MariaDB physical backups): the newest complete one at the target is
drilled, whichever kind it is, and the command line alone never has to say which."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tiffin import jobargs
from tiffin.catalog.manifest import Manifest
from tiffin.catalog.naming import MANIFEST_SUFFIX, make_name
from tiffin.commands import drillphysical
from tiffin.errors import NotFound
from tiffin.job import TargetOptions, TargetURL
from tiffin.sources import ANY_PHYSICAL
from tiffin.targets.local import LocalTarget


def store(folder: Path, what: str, hour: int) -> None:
    """Store a complete backup of WHAT taken at HOUR:00 (its bytes and its manifest)."""
    when = datetime(2026, 12, 3, hour, tzinfo=UTC)
    name = make_name("db1", what, when, "zstd", False)
    (folder / name).write_bytes(b"x")
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = Manifest(name, what, "db1", stamp, stamp, 1, "0" * 64, "zstd")
    (folder / (name + MANIFEST_SUFFIX)).write_bytes(manifest.to_json())


@pytest.mark.parametrize(
    ("held", "into"),
    [
        ([("pgbase", 1), ("mariabackup", 2)], "mysqldata"),
        ([("mariabackup", 1), ("pgbase", 2)], "pgdata"),
        ([("pgbase", 3), ("mysql", 4), ("mariabackup", 2)], "pgdata"),  # a dump is not one
    ],
)
def test_latest_physical_is_the_newest_physical_backup_of_any_kind(
    tmp_path: Path, held: list[tuple[str, int]], into: str
) -> None:
    for what, hour in held:
        store(tmp_path, what, hour)
    job = jobargs.drill_job(["local", str(tmp_path), "latest"], {"physical": True})
    assert job.into == ANY_PHYSICAL
    target = LocalTarget(TargetURL("local", path=str(tmp_path)), TargetOptions())
    assert drillphysical.newest_into(target, None, None) == into


def test_no_physical_backup_is_said_before_any_server_starts(tmp_path: Path) -> None:
    store(tmp_path, "mysql", 1)
    target = LocalTarget(TargetURL("local", path=str(tmp_path)), TargetOptions())
    with pytest.raises(NotFound, match="no complete physical backup"):
        drillphysical.newest_into(target, None, None)

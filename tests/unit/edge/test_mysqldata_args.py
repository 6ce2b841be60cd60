"""restore/drill arguments of physical MariaDB backups, refused before anything is contacted."""

from __future__ import annotations

import pytest

from tiffin import jobargs
from tiffin.errors import UsageError

TARGET = ["local", "/var/backups"]


def test_restore_into_mysqldata_needs_a_directory_and_takes_no_lsn() -> None:
    with pytest.raises(UsageError, match="--into mysqldata needs the destination: --dir DIR"):
        jobargs.restore_job([*TARGET, "latest"], {"into": "mysqldata"})
    with pytest.raises(UsageError, match="recover MariaDB with --to-time"):
        jobargs.restore_job(
            [*TARGET, "latest"], {"into": "mysqldata", "dir": "/srv/d", "to_lsn": "0/3000060"}
        )
    job = jobargs.restore_job(
        [*TARGET, "latest"],
        {"into": "mysqldata", "dir": "/srv/d", "to_time": "2026-12-03 16:59:00 UTC"},
    )
    assert job.source.what == "mariabackup" and job.to_time is not None


def test_mysql_physical_is_the_mariabackup_kind_and_takes_no_database() -> None:
    spec = jobargs.source_spec("mysql", {"physical": True})
    assert spec.what == "mariabackup" and spec.physical
    with pytest.raises(UsageError, match="drop --database"):
        jobargs.source_spec("mysql", {"physical": True, "database": ["shop"]})


def test_drill_of_a_mariabackup_name_needs_no_into() -> None:
    name = "ramen_2026-12-03_03:00:00_UTC.mariabackup.xb.zst"
    assert jobargs.drill_job([*TARGET, name], {}).into == "mysqldata"
    assert jobargs.drill_job([*TARGET, "latest"], {"into": "mysqldata"}).source.physical
    with pytest.raises(UsageError, match="say where to drill"):
        jobargs.drill_job([*TARGET, "latest"], {})

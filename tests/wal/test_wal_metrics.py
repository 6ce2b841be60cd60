"""wal-push tells Prometheus (SPEC §7): tiffin_archive_last_file_timestamp_seconds after each
file archived, tiffin_archive_last_status 0 after a failure, labelled LABEL-pgsql."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from tests.e2e.helpers import tiffin
from tests.servers.env import tiffin_env

SEG = "000000010000000000000009"


def _series(text: str, name: str) -> float:
    m = re.search(
        rf'^{name}{{job="pg1-pgsql",target="file://[^"]+",what="pgsql"}} (\S+)$', text, re.M
    )
    assert m, text
    return float(m[1])


def test_wal_push_writes_the_archive_series(tmp_path: Path) -> None:
    wal = tmp_path / "pg_wal" / SEG
    wal.parent.mkdir()
    wal.write_bytes(os.urandom(10_000))
    prom = tmp_path / "tiffin.prom"
    env = tiffin_env(tmp_path / "home")
    before = time.time()
    args = ["wal-push", "local", str(tmp_path / "archive"), "--label", "pg1", str(wal)]
    tiffin([*args, "--metrics-file", str(prom)], env)
    text = prom.read_text()
    assert _series(text, "tiffin_archive_last_file_timestamp_seconds") >= int(before)
    assert _series(text, "tiffin_archive_last_status") == 1
    wal.write_bytes(os.urandom(10_000))  # other bytes under the same name: refused
    failed = tiffin([*args, "--metrics-file", str(prom)], env, expect=1)
    assert "never overwritten" in failed.stderr
    text = prom.read_text()
    assert _series(text, "tiffin_archive_last_status") == 0
    assert _series(text, "tiffin_archive_last_file_timestamp_seconds") >= int(before)

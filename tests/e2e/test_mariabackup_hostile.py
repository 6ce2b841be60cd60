"""A planted or damaged physical backup restored --into mysqldata stays harmless: nothing is
written outside DATADIR, nothing of it is left in DATADIR, and the exit is 1 with a sentence."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.helpers import tiffin
from tests.faults.tried import tried
from tests.servers.env import tiffin_env
from tiffin.catalog.manifest import Manifest
from tiffin.catalog.naming import make_name
from tiffin.sources.xbstream import MAGIC

CNF = b"[mysqld]\ninnodb_data_file_path=ibdata1:12M:autoextend\ninnodb_page_size=16384\n"


def chunk(path: bytes, data: bytes = b"", kind: bytes = b"P") -> bytes:
    head = MAGIC + b"\0" + kind + struct.pack("<I", len(path)) + path
    if kind == b"E":
        return head
    return head + struct.pack("<QQI", len(data), 0, zlib.crc32(data)) + data


def xbstream(*files: tuple[bytes, bytes]) -> bytes:
    return b"".join(chunk(p, d) + chunk(p, kind=b"E") for p, d in files)


def plant(folder: Path, data: bytes) -> str:
    """Store DATA gzipped as a complete physical backup with a true manifest; return its name."""
    folder.mkdir(parents=True, exist_ok=True)
    label = "hostile-" + uuid.uuid4().hex[:8]
    stored = gzip.compress(data)
    when = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    name = make_name(label, "mariabackup", when, "gzip", False)
    (folder / name).write_bytes(stored)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = Manifest(
        name=name, what="mariabackup", label=label, started=stamp, finished=stamp,
        size=len(stored), sha256=hashlib.sha256(stored).hexdigest(), compression="gzip",
        source={"server": "mysql", "physical": "mariabackup", "databases": ["shop"],
                "tables": {"shop": ["t"]}, "rows": {"shop": {"t": 2}}},
    )  # fmt: skip
    (folder / (name + ".manifest.json")).write_bytes(manifest.to_json())
    return name


ESCAPES = {
    "dot-dot": (b"../escaped", "leads out of its folder"),
    "deep dot-dot": (b"shop/../../../escaped", "leads out of its folder"),
    "absolute": (b"ABSOLUTE", "not a plain relative path"),
}


@tried(
    "hostile",
    "a planted physical MariaDB backup whose xbstream paths lead out (`..`, absolute)",
    "restore --into mysqldata of a backup with a true manifest whose stream holds such a path",
    "exit 1 naming the path before mbstream writes it; nothing written outside, no DATADIR, "
    "no work folder left",
)
@pytest.mark.parametrize("case", ESCAPES)
def test_a_stream_whose_paths_lead_out_writes_nothing_anywhere(tmp_path: Path, case: str) -> None:
    path, why = ESCAPES[case]
    outside = tmp_path / "escaped"
    if path == b"ABSOLUTE":
        path = str(outside).encode()
    name = plant(tmp_path / "b", xbstream((b"ibdata1", b"x" * 10), (path, b"pwned")))
    datadir = tmp_path / "restored" / "data"
    datadir.parent.mkdir()
    r = tiffin(["restore", "local", str(tmp_path / "b"), name, "--into", "mysqldata",
                "--dir", str(datadir)], tiffin_env(tmp_path / "home"), expect=1)  # fmt: skip
    assert why in r.stderr
    assert not outside.exists() and not (tmp_path / "b" / "escaped").exists()
    assert os.listdir(datadir.parent) == []  # no DATADIR, no work folder


@tried(
    "hostile",
    "a physical backup whose backup-my.cnf names data files elsewhere or plugins",
    "restore --into mysqldata; backup-my.cnf sets innodb_data_file_path=../../../tmp/evil",
    "exit 1 naming the setting before mariabackup runs; the empty DATADIR stays empty "
    "(plugin and folder settings are never passed on: unit tests)",
)
def test_a_backup_my_cnf_naming_files_elsewhere_is_refused(tmp_path: Path) -> None:
    cnf = b"[mysqld]\ninnodb_data_file_path=../../../tmp/evil:12M:autoextend\n"
    data = xbstream((b"xtrabackup_checkpoints", b"backup_type = full-backuped\n"),
                    (b"backup-my.cnf", cnf), (b"ibdata1", b"x"))  # fmt: skip
    name = plant(tmp_path / "b", data)
    datadir = tmp_path / "data"
    datadir.mkdir()  # an empty folder is a fine DATADIR, and stays as it was
    r = tiffin(["restore", "local", str(tmp_path / "b"), name, "--into", "mysqldata",
                "--dir", str(datadir)], tiffin_env(tmp_path / "home"), expect=1)  # fmt: skip
    assert "backup-my.cnf sets innodb_data_file_path" in r.stderr
    assert os.listdir(datadir) == []
    assert sorted(os.listdir(tmp_path)) == ["b", "data", "home"]


@tried(
    "hostile",
    "a physical backup that is no xbstream, is cut short, lacks mariabackup's files, or whose "
    "files mariabackup cannot prepare",
    "restore --into mysqldata of each, planted with a true manifest",
    "exit 1 saying which; DATADIR not created, nothing left beside it",
)
def test_a_stream_that_is_no_backup_or_is_cut_short_leaves_nothing(tmp_path: Path) -> None:
    env = tiffin_env(tmp_path / "home")
    cases = {
        "not a mariabackup stream": b"-- MariaDB dump\nDROP DATABASE mysql;\n",
        "cut short": xbstream((b"backup-my.cnf", CNF), (b"ibdata1", b"y" * 1000))[:-700],
        "holds no xtrabackup_checkpoints": xbstream((b"backup-my.cnf", CNF)),
        "mariabackup --prepare exited with status": xbstream(
            (b"xtrabackup_checkpoints", b"backup_type = full-backuped\nto_lsn = 9\n"),
            (b"backup-my.cnf", CNF),
            (b"ibdata1", b"\0" * 65536),
        ),
    }
    for why, data in cases.items():
        name = plant(tmp_path / "b", data)
        datadir = tmp_path / "data"
        r = tiffin(["restore", "local", str(tmp_path / "b"), name, "--into", "mysqldata",
                    "--dir", str(datadir)], env, expect=1)  # fmt: skip
        assert why in r.stderr, r.stderr
        assert not datadir.exists()
        assert sorted(os.listdir(tmp_path)) == ["b", "home"]


@tried(
    "hostile",
    "a physical backup whose stored bytes differ from its manifest",
    "restore --into mysqldata of a planted backup whose manifest's sha256 is another's",
    "exit 1, `the sha256 of NAME does not match its manifest`, found as the stream ends and "
    "before anything is prepared or moved: DATADIR not created",
)
def test_bytes_that_differ_from_the_manifest_are_caught_before_datadir_is_written(
    tmp_path: Path,
) -> None:
    data = xbstream((b"xtrabackup_checkpoints", b"x"), (b"backup-my.cnf", CNF))
    name = plant(tmp_path / "b", data)
    m = tmp_path / "b" / (name + ".manifest.json")
    text = m.read_text()
    digest = text.split('"sha256": "', 1)[1][:64]
    m.write_text(text.replace(digest, "0" * 64, 1))
    datadir = tmp_path / "data"
    r = tiffin(["restore", "local", str(tmp_path / "b"), name, "--into", "mysqldata",
                "--dir", str(datadir)], tiffin_env(tmp_path / "home"), expect=1)  # fmt: skip
    assert f"the sha256 of {name} does not match its manifest" in r.stderr
    assert not datadir.exists()
    assert sorted(os.listdir(tmp_path)) == ["b", "home"]

"""The manifest's bounds and schema: what the writer writes reads back, whatever its size;
what is too large or of the wrong shape is refused in one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiffin.catalog import manifest
from tiffin.catalog.holdings import read_manifest
from tiffin.catalog.manifest import Manifest, Part
from tiffin.errors import IntegrityError
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets.local import LocalTarget

NAME = "host_2026-01-01_03:00:00_UTC.sqlite.gz"
SHA = "ab" * 32
NAMES = st.text(min_size=1, max_size=30)
COUNT = st.integers(0, 2**63 - 1)


def made(**source: object) -> Manifest:
    return Manifest(NAME, "sqlite", "host", "s", "f", 10, SHA, "gzip", source=dict(source))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(NAMES, COUNT, max_size=20),
    st.lists(st.builds(Part, NAMES, COUNT, st.just(SHA)), max_size=4),
    st.lists(NAMES, max_size=3),
)
def test_every_manifest_written_reads_back_equal(
    tables: dict[str, int], parts: list[Part], recipients: list[str]
) -> None:
    m = Manifest(
        NAME,
        "sqlite",
        "host",
        "2026-01-01T03:00:00Z",
        "2026-01-01T03:00:01Z",
        2**63 - 1,
        SHA,
        "gzip",
        parts=tuple(parts),
        encryption=tuple(recipients),
        source={"tables": tables, "journal_mode": "wal", "files": 3},
    )
    assert Manifest.from_json(m.to_json(), NAME) == m


def test_a_manifest_too_large_drops_per_table_details_and_still_reads_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(manifest, "MAX_BYTES", 100_000)
    tables = {f"t{i:05d}{'x' * 194}": i for i in range(2_000)}  # ~420 kB of details
    m = made(tables=tables, rows={"db": {"t": 1}}, journal_mode="wal")
    raw = m.to_json()
    assert len(raw) <= 100_000
    back = Manifest.from_json(raw, NAME)
    assert back.source["omitted"] == ["rows", "tables"]
    assert "tables" not in back.source and back.source["journal_mode"] == "wal"


def test_a_huge_file_as_manifest_is_refused_after_reading_only_the_bound(tmp_path: Path) -> None:
    (tmp_path / (NAME + ".manifest.json")).open("wb").truncate(10 << 30)  # 10 GiB, sparse
    target = LocalTarget(TargetURL("local", path=str(tmp_path)), TargetOptions())
    with pytest.raises(IntegrityError, match="larger than 64 MiB, more than tiffin ever writes"):
        read_manifest(target, NAME)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"size": True}, "manifest.size must be a whole number"),
        ({"size": 2**63}, "manifest.size must be a whole number"),
        ({"sha256": "AB" * 32}, "manifest.sha256 must be 64 hexadecimal digits"),
        ({"parts": [{"name": "p", "size": 1}]}, "manifest.parts[0].sha256 is missing"),
        ({"encryption": {"recipients": [1]}}, "manifest.encryption.recipients[0] must be"),
        ({"source": {"tables": {"db": [1]}}}, "manifest.source.tables has neither"),
        ({"source": {"single_database": True}}, "names no database for its one database"),
        ({"what": "oracle"}, "of an unknown kind 'oracle'"),
        ({"source": {"rows": {"db": {"t": -1}}}}, "manifest.source.rows.db.t must be"),
        ({"format": 99}, "is of format 99, newer than this tiffin reads (1)"),
    ],
)
def test_a_field_of_the_wrong_type_or_range_is_named(change: dict[str, object], said: str) -> None:
    good = json.loads(made(tables={"t": 1}).to_json())
    with pytest.raises(IntegrityError) as info:
        Manifest.from_json(json.dumps({**good, **change}).encode(), NAME)
    assert said in str(info.value) and str(info.value).startswith(f"the manifest of {NAME}")


def test_unknown_fields_are_tolerated() -> None:
    good = json.loads(made(tables={"t": 1}).to_json())
    extra = {**good, "future": [1, {"x": None}], "source": {**good["source"], "new": 1.5}}
    assert Manifest.from_json(json.dumps(extra).encode(), NAME).source["new"] == 1.5

"""Backups of different sources under one label and one target never collide: not on the
name (a run whose second is taken takes the next free one), not on the lock, not in
prune's retention groups, the --min-ratio comparison or restore's `latest`. Run for real
against a local folder and an FTP server."""

from __future__ import annotations

import json
import os
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.helpers import tiffin
from tests.faults.midstream import LABEL, running
from tests.faults.places import MANIFEST, Place
from tests.faults.tried import tried
from tiffin.catalog.holdings import free_name
from tiffin.catalog.naming import make_name
from tiffin.engine import lock
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets import make_target

PAIRS = 3  # pairs of runs started together


def folders(tmp_path: Path) -> dict[str, Path]:
    """Two folders of different sizes: A (300 KB, incompressible) and B (a few bytes)."""
    made = {}
    for key, body in (("a", os.urandom(300_000)), ("b", b"folder b\n")):
        folder = tmp_path / f"src-{key}"
        folder.mkdir()
        (folder / f"only-in-{key}").write_bytes(body)
        made[key] = folder
    return made


def backup(place: Place, folder: Path, *extra: str, expect: int = 0) -> str:
    args = ["backup", "data", *place.args, "--label", LABEL, "--dir", str(folder), *extra]
    return tiffin(args, place.env, expect=expect).stdout


def complete(place: Place) -> list[dict[str, object]]:
    return [i for i in place.listing() if i["complete"]]


def ids(place: Place, sources: dict[str, Path]) -> dict[str, str]:
    """Return {a|b: source_id} read back from the target's manifests."""
    found: dict[str, str] = {}
    assert place.folder is not None
    for item in complete(place):
        manifest = json.loads((place.folder / f"{item['name']}{MANIFEST}").read_text())
        folder = manifest["source"]["identity"]["folder"]
        [key] = [k for k, f in sources.items() if str(f) == folder]
        found[key] = str(item["source_id"])
    return found


def members(place: Place, name: str, tmp_path: Path) -> list[str]:
    """Return the file names inside backup NAME, restored with --output."""
    out = tmp_path / f"restored-{name}.tar"
    tiffin(["restore", *place.args, name, "--output", str(out)], place.env)
    with tarfile.open(out) as tar:
        return sorted(os.path.basename(m.name) for m in tar.getmembers() if m.isfile())


@tried(
    "fault",
    "Two jobs of different folders, one label and one target, at once",
    f"{PAIRS} pairs of `backup data` runs of two folders (same label, same target) started "
    "together, so that they start and finish in the same second",
    "every run exits 0; 2 x pairs complete backups under distinct names of SPEC §2's form "
    "(a run whose second is taken takes the next free one); each restores its own folder",
)
@pytest.mark.parametrize("place", ["local", "ftp"], indirect=True)
def test_two_folders_backed_up_at_once_never_fail_each_other(place: Place, tmp_path: Path) -> None:
    sources = folders(tmp_path)
    for _ in range(PAIRS):
        runs = []
        for folder in sources.values():
            args = ["backup", "data", *place.args, "--label", LABEL, "--dir", str(folder)]
            runs.append(running(args, place.env))
        entered = [r.__enter__() for r in runs]
        try:
            for run in entered:
                run.finish(timeout=120)
                assert run.proc.returncode == 0, run.err
        finally:
            for r in runs:
                r.__exit__(None, None, None)
    names = [str(i["name"]) for i in complete(place)]
    assert len(names) == 2 * PAIRS == len(set(names)), names
    for name in names:
        inside = members(place, name, tmp_path)
        assert inside in (["only-in-a"], ["only-in-b"]), (name, inside)


@tried(
    "fault",
    "Two runs on this machine pick a name in the same second",
    "a name is claimed (as a run holds it from its start) before a second run of the same "
    "label, kind and target picks its name for the same second",
    "the second run takes the next second's name; the claim is free again once released",
)
def test_a_name_claimed_by_another_run_is_skipped(tmp_path: Path) -> None:
    """Two runs on this machine in the same second: the second takes the next second, even
    before the first has stored a byte (its claim on the name is what it meets)."""
    where = TargetURL("local", path=str(tmp_path / "t"))
    target = make_target(where, TargetOptions())
    when = datetime(2026, 12, 7, 3, 0, 0, tzinfo=UTC)

    def name_of(t: datetime) -> str:
        return make_name(LABEL, "data", t, "gzip", False)

    first, held = free_name(target, where.redacted(), when, name_of)
    try:
        assert first == name_of(when)
        second, other = free_name(target, where.redacted(), when, name_of)
        other.close()
        assert second == make_name(LABEL, "data", when.replace(second=1), "gzip", False)
    finally:
        held.close()
    again = lock.claim(where.redacted(), first)  # released with its run
    assert again is not None
    again.close()


@tried(
    "fault",
    "Retention, --min-ratio and `latest` with two sources under one label",
    "folder A (300 KB) is backed up with `--keep-last 1`, then folder B (a few bytes) with "
    "`--keep-last 1`, then A again; `prune --keep-last 1`; `restore latest --source-id ID` "
    "of each; then one manifest written without `source.identity` (as before it existed) "
    "and A backed up again with `--keep-last 1`",
    "B's backup never deletes A's, nor warns that it is under --min-ratio of A's; A's "
    "second backup replaces only A's first; `restore latest --source-id` gives each "
    "source's own files; a manifest without identity is a group of its own: kept, listed "
    "complete, restorable",
)
@pytest.mark.parametrize("place", ["local", "ftp"], indirect=True)
def test_retention_ratio_and_latest_keep_sources_apart(place: Place, tmp_path: Path) -> None:
    sources = folders(tmp_path)
    backup(place, sources["a"], "--keep-last", "1")
    out = backup(place, sources["b"], "--keep-last", "1")
    assert "WARNING" not in out, out  # B is not compared with A (--min-ratio)
    assert len(complete(place)) == 2
    first = ids(place, sources)
    assert first["a"] != first["b"]
    a_before = {str(i["name"]) for i in complete(place) if i["source_id"] == first["a"]}
    backup(place, sources["a"], "--keep-last", "1")
    after = complete(place)
    assert len(after) == 2, after
    assert not a_before & {str(i["name"]) for i in after}, "A's first backup was kept"
    r = tiffin(["prune", place.url, "--keep-last", "1"], place.env)
    assert "Deleted 0 and kept 2" in r.stdout, r.stdout
    for key in ("a", "b"):
        out_file = tmp_path / f"latest-{key}.tar"
        restore = ["restore", *place.args, "latest", "--source-id", first[key]]
        tiffin([*restore, "--output", str(out_file)], place.env)
        with tarfile.open(out_file) as tar:
            assert [os.path.basename(n) for n in tar.getnames() if "only-in" in n] == [
                f"only-in-{key}"
            ]
    # A manifest from before identities: its backup is a group of its own.
    assert place.folder is not None
    [old] = [str(i["name"]) for i in complete(place) if i["source_id"] == first["b"]]
    path = place.folder / f"{old}{MANIFEST}"
    manifest = json.loads(path.read_text())
    del manifest["source"]["identity"]
    path.write_text(json.dumps(manifest))
    backup(place, sources["b"], "--keep-last", "1")
    kept = {str(i["name"]): i["source_id"] for i in complete(place)}
    assert kept.get(old, "gone") is None and len(kept) == 3, kept
    assert members(place, old, tmp_path) == ["only-in-b"]
    r = tiffin(["prune", place.url, "--keep-last", "1"], place.env)
    assert "Deleted 0 and kept 3" in r.stdout, r.stdout

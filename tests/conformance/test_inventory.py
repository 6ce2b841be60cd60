"""list, verify and prune through the Target API, on every target kind against its real server."""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tests.conformance.kinds import Setup
from tiffin.catalog.backup import COMPLETE, INCOMPLETE, PARTIAL
from tiffin.catalog.holdings import survey
from tiffin.catalog.manifest import Manifest
from tiffin.catalog.naming import MANIFEST_SUFFIX, PARTIAL_SUFFIX, make_name
from tiffin.commands.inventory import verify_one
from tiffin.engine.prune import apply_policy
from tiffin.job import Retention
from tiffin.targets import Target

NOW = datetime.now(UTC).replace(microsecond=0)


def name_at(days: float, label: str = "ramen") -> str:
    return make_name(label, "mysql", NOW - timedelta(days=days), "gzip", False)


def payload(size: int, seed: int = 0) -> bytes:
    """SIZE bytes of a gzip stream that does not compress: a valid .sql.gz of about SIZE."""
    raw = b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(size // 32 + 1))
    return gzip.compress(raw[:size], compresslevel=0)


def store(target: Target, name: str, data: bytes, **lie: object) -> Manifest:
    """Store a complete backup as the pipeline does: the bytes, then the manifest."""
    stored = target.put(name, io.BytesIO(data))
    label = name.split("_", 1)[0]
    m = Manifest(
        name=name,
        what="mysql",
        label=label,
        started="2026-01-01T00:00:00Z",
        finished="2026-01-01T00:00:01Z",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        compression="gzip",
        parts=stored.parts,
        source={"server": "mysql"},
    )
    m = replace(m, **lie)  # type: ignore[arg-type]
    target.put(name + MANIFEST_SUFFIX, io.BytesIO(m.to_json()))
    return m


def states(target: Target) -> list[tuple[str, str]]:
    return [(i.name, i.state) for i in survey(target)]


def test_list_shows_backups_newest_first_and_ignores_other_files(
    make_target: Callable[[], Target],
) -> None:
    target = make_target()
    newest, other, older = name_at(0.1), name_at(1, label="udon"), name_at(2)
    for name in (older, newest, other):
        store(target, name, payload(3000))
    incomplete, partial = name_at(3), name_at(4)
    target.put(incomplete, io.BytesIO(payload(10)))
    target.put(partial + PARTIAL_SUFFIX, io.BytesIO(b"half a dump"))
    target.put("notes.txt", io.BytesIO(b"not a backup"))
    target.put("ramen_not-a-date.sql.gz", io.BytesIO(b"not a backup either"))
    assert states(make_target()) == [
        (newest, COMPLETE),
        (other, COMPLETE),
        (older, COMPLETE),
        (incomplete, INCOMPLETE),
        (partial, PARTIAL),
    ]
    [item] = [i for i in survey(target) if i.name == newest]
    assert item.size == len(payload(3000)) and item.what == "mysql"
    assert item.to_json()["created"] == (NOW - timedelta(days=0.1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_verify_reads_every_byte_and_catches_what_is_wrong(
    make_target: Callable[[], Target], setup: Setup
) -> None:
    target = make_target()
    name = name_at(0)
    chunked = setup.url.kind == "s3multi"
    good = payload(2 * setup.part_size + 1234 if chunked else 50_000)
    m = store(target, name, good)

    def check() -> str:
        [item] = [i for i in survey(make_target()) if i.name == name]
        verdict = verify_one(make_target(), item)
        return verdict.line()

    ok = check()
    assert ok.startswith(f"OK {name} ({len(good)} bytes, sha256 {m.sha256}")
    if chunked:
        assert f"; {len(m.parts)} chunks)" in ok and len(m.parts) == 3

    def replace_bytes(data: bytes) -> None:
        target.remove(name)
        target.put(name, io.BytesIO(data))

    flipped = bytearray(good)
    flipped[len(good) - 1000] ^= 0x10  # in the last chunk of a chunked backup
    replace_bytes(bytes(flipped))
    failed = check()
    assert failed.startswith(f"FAILED {name}: its sha256 does not match its manifest")
    if chunked:
        assert f"the chunk {name}.02 does not match its manifest" in failed

    replace_bytes(good[:-10])
    assert f"it holds {len(good) - 10} bytes, its manifest says {len(good)}" in check()

    replace_bytes(good)
    target.remove(name + MANIFEST_SUFFIX)
    store_manifest_only = replace(m, size=len(good) + 1)
    target.put(name + MANIFEST_SUFFIX, io.BytesIO(store_manifest_only.to_json()))
    assert f"it holds {len(good)} bytes, its manifest says {len(good) + 1}" in check()

    target.remove(name + MANIFEST_SUFFIX)
    assert check() == f"INCOMPLETE {name}: it has no manifest"


def test_prune_keeps_what_the_policy_names_and_removes_old_leftovers(
    make_target: Callable[[], Target],
) -> None:
    target = make_target()
    days = [name_at(d + 0.01) for d in range(6)]
    for name in days:
        store(target, name, payload(2000, seed=len(name)))
    other = name_at(5, label="udon")
    store(target, other, payload(2000))
    incomplete, partial = name_at(10), name_at(11)
    target.put(incomplete, io.BytesIO(payload(10)))
    target.put(partial + PARTIAL_SUFFIX, io.BytesIO(b"half"))
    before = sorted((e.name, e.partial) for e in target.list())

    decisions = apply_policy(target, Retention(daily=2), label="ramen", dry_run=True)
    assert sorted((e.name, e.partial) for e in target.list()) == before
    assert [d.name for d in decisions if d.keep] == [days[0], days[1], incomplete, partial]

    apply_policy(make_target(), Retention(daily=2), label="ramen", what="mysql")
    assert states(make_target()) == [
        (days[0], COMPLETE),
        (days[1], COMPLETE),
        (other, COMPLETE),  # another label: another group, untouched
        (incomplete, INCOMPLETE),  # just written: a backup may still be running
        (partial, PARTIAL),
    ]

    later = datetime.now(UTC) + timedelta(days=2)
    apply_policy(make_target(), Retention(last=1), now=later)
    assert states(make_target()) == [(days[0], COMPLETE), (other, COMPLETE)]
    left = {e.name for e in make_target().list()}
    assert left == {days[0], days[0] + MANIFEST_SUFFIX, other, other + MANIFEST_SUFFIX}


def test_prune_never_deletes_the_newest_complete_backup(make_target: Callable[[], Target]) -> None:
    target = make_target()
    newest, old = name_at(400), name_at(800)
    store(target, newest, payload(100))
    store(target, old, payload(100, seed=1))
    target.put(name_at(0) + PARTIAL_SUFFIX, io.BytesIO(b"running"))
    apply_policy(target, Retention(hourly=1))
    assert [n for n, s in states(make_target()) if s == COMPLETE] == [newest]

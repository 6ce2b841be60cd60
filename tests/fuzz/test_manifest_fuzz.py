"""Mutated manifests beside real stored backups: list, verify, restore, prune and drill read
them (tiffin.cli.main in this process, in the sandbox of sandbox.py).

A real SQLite backup and a real folder backup are made once; each example mutates one of
their manifests (a field deleted, given another type or an extreme value, the document's
structure changed, its bytes cut or nested deep) and runs one command on the folder. The
outcome is always exit 0, 1 or 2 with a clear sentence: never a traceback, never an
unexpected error, nothing written outside the sandbox."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.tried import tried
from tests.fuzz.sandbox import Sandbox
from tests.fuzz.test_cli_fuzz import PORT, check
from tiffin.catalog.manifest import SOURCE

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
JSON_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([-1, 0, 2**63, 2**64, -(2**63), 10**30])
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "0" * 64, "f" * 64, "F" * 64, "../x", "none", "gzip", "mysql"])
)
JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# Keys a reader looks for, whether or not this backup's manifest holds them.
KNOWN = [
    "name",
    "what",
    "label",
    "size",
    "sha256",
    "compression",
    "parts",
    "encryption",
    "source",
    "tool",
    "format",
    "started",
    "finished",
]


def paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into VALUE: () for the whole, then each key or index, depth first."""
    yield at
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, (*at, i))


def set_at(doc: Any, at: tuple[Any, ...], value: Any, delete: bool = False) -> Any:
    if not at:
        return value
    parent = doc
    for step in at[:-1]:
        parent = parent[step]
    if delete:
        del parent[at[-1]]
    elif isinstance(parent, dict) or at[-1] < len(parent):
        parent[at[-1]] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn, original: dict[str, Any]) -> bytes:
    doc = json.loads(json.dumps(original))
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(doc, dict):
            break
        known = [(k,) for k in KNOWN] + [("source", k) for k in SOURCE.fields]
        where = draw(st.sampled_from(list(paths(doc)) + known))
        if where[:1] == ("source",) and not isinstance(doc.get("source"), dict):
            doc["source"] = {}
        how = draw(st.sampled_from(["replace", "delete", "wrap", "huge"]))
        try:
            if how == "delete" and where:
                doc = set_at(doc, where, None, delete=True)
            elif how == "wrap":
                doc = set_at(doc, where, draw(st.sampled_from([[1], {"x": 1}, [[]]])))
            elif how == "huge":
                doc = set_at(doc, where, draw(st.sampled_from([2**200, 1e308, -1e308, "x" * 9999])))
            else:
                doc = set_at(doc, where, draw(JSON))
        except (KeyError, IndexError, TypeError):
            continue
    raw = json.dumps(doc, indent=2).encode()
    cut = draw(st.sampled_from(["whole", "whole", "whole", "cut", "deep", "bytes"]))
    if cut == "cut":
        return raw[: draw(st.integers(0, len(raw)))]
    if cut == "deep":
        return b"[" * 100_000 + b"]" * 100_000
    if cut == "bytes":
        return raw.replace(b'"', b"\xff", 1)
    return raw


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("manifests")
    (root / "data").mkdir()
    (root / "data" / "f.txt").write_text("a file\n")
    conn = sqlite3.connect(root / "src.db")
    conn.executescript("CREATE TABLE menu (id, dish); INSERT INTO menu VALUES (1, 'ramen');")
    conn.commit()
    conn.close()
    yield Sandbox(root, PORT)


@tried(
    "fuzz",
    "Mutated manifests beside real backups",
    "a real SQLite backup and a real folder backup are stored in a folder; hypothesis (200 "
    "examples) mutates one manifest: fields deleted, of another type (nested too), extreme "
    "numbers, known fields added with wrong types, the document cut, non-UTF-8 or nested "
    "100,000 deep; then runs list, verify, restore (to a file, stdout, --into sqlite), prune "
    "or drill on it",
    "never a traceback or an unexpected error: exit 0, 1 (the manifest named as not valid) or "
    "2; nothing written outside the sandbox. Mutated manifests tried: 200 a run, over 9 "
    "commands; tracebacks or unexpected errors: 0",
)
def test_mutated_manifests_are_refused_clearly_by_every_reader(box: Sandbox) -> None:
    t = box.root / "t"
    for argv in (
        ["backup", "sqlite", "local", str(t), "--file", str(box.root / "src.db")],
        ["backup", "data", "local", str(t), "--dir", str(box.root / "data"), "--label", "d"],
    ):
        outcome = box.run(argv)
        assert outcome.code == 0, outcome.err
    pristine = box.root / "pristine"
    shutil.copytree(t, pristine)
    manifests = sorted(p.name for p in pristine.glob("*.manifest.json"))
    names = [m.removesuffix(".manifest.json") for m in manifests]
    sqlite_name = next(n for n in names if ".sqlite" in n)
    originals = {m: json.loads((pristine / m).read_text()) for m in manifests}

    @FUZZ
    @given(st.sampled_from(manifests), st.data(), st.integers(0, 8))
    def run(which: str, data: st.DataObject, command: int) -> None:
        shutil.rmtree(t)
        shutil.copytree(pristine, t)
        (t / which).write_bytes(data.draw(mutated(originals[which])))
        name = which.removesuffix(".manifest.json")
        target = ["local", str(t)]
        argv = [
            ["list", *target],
            ["list", *target, "--json"],
            ["verify", *target, "--all"],
            ["verify", *target, name],
            ["restore", *target, name, "--output", "out", "--overwrite"],
            ["restore", *target, "latest", "--output", "-"],
            ["restore", *target, sqlite_name, "--into", "sqlite", "--file", "r.db", "--overwrite"],
            ["prune", *target, "--keep-last", "1"],
            ["drill", *target, sqlite_name, "--into", "sqlite"],
        ][command]
        check(box.run(argv), argv)

    run()

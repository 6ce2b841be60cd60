"""docs/reliability.md is what the declared tests make it (see tests/faults/tried.py)."""

from __future__ import annotations

import difflib
from pathlib import Path

from tests.faults.tried import MODULES, SECTIONS, declared, render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


def test_the_reliability_page_matches_the_tests() -> None:
    want = render()
    have = PAGE.read_text() if PAGE.exists() else ""
    diff = "".join(
        difflib.unified_diff(have.splitlines(True), want.splitlines(True), str(PAGE), "render()")
    )
    assert have == want, (
        "docs/reliability.md differs from the tests' declarations; regenerate it with\n"
        "    .venv/bin/python -m tests.faults.tried > docs/reliability.md\n" + diff
    )


def test_every_test_of_the_fault_modules_is_declared() -> None:
    """A fault test without a declaration would be missing from the page."""
    import importlib
    import inspect

    rows = {(module, name) for module, name, _, _ in declared()}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("test_") and fn.__module__ == module_name:
                assert (module_name, name) in rows, f"{module_name}.{name} declares nothing"
    assert {d.section for _, _, d, _ in declared()} == set(SECTIONS)

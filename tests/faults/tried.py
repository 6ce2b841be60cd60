"""What each fault, hostile-input, secrets and fuzzing test tries, declared on the test itself.

docs/reliability.md is made from these declarations and the tests' parametrizations, so that
the page cannot claim a test that does not exist, nor miss one that does:

    .venv/bin/python -m tests.faults.tried > docs/reliability.md

tests/faults/test_reliability_page.py fails when the page differs from what this prints.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# The modules whose declared tests make up the page, in the page's order.
MODULES = (
    "tests.faults.test_source_faults",
    "tests.faults.test_frozen_server",
    "tests.faults.test_target_faults",
    "tests.faults.test_interrupts",
    "tests.faults.test_lock",
    "tests.faults.test_lifecycle_race",
    "tests.faults.test_sources_apart",
    "tests.e2e.test_hostile",
    "tests.e2e.test_many_tables",
    "tests.e2e.test_no_traceback",
    "tests.e2e.test_hostile_dumps",
    "tests.e2e.test_jail_nonroot",
    "tests.e2e.test_client_commands",
    "tests.e2e.test_secrets_all",
    "tests.fuzz.test_cli_fuzz",
    "tests.fuzz.test_option_ranges",
    "tests.fuzz.test_manifest_fuzz",
    "tests.unit.commands.test_roundtrip_strings",
    "tests.e2e.test_schedule_strings",
    "tests.e2e.test_password_forms",
    "tests.e2e.test_db_passwords",
    "tests.e2e.test_planted_links",
    "tests.faults.test_watch_faults",
    "tests.fuzz.test_metrics_fuzz",
    "tests.e2e.test_status_hostile",
    "tests.unit.commands.test_status_page_strings",
    "tests.e2e.test_kubernetes_secrets",
    "tests.e2e.test_mariabackup_faults",
    "tests.e2e.test_mariabackup_hostile",
    "tests.faults.test_binlog_faults",
    "tests.wal.test_no_wal_lost",
)
SECTIONS = {
    "fault": "Faults made real",
    "hostile": "Hostile input",
    "secret": "Secrets",
    "fuzz": "Fuzzing",
}


@dataclass(frozen=True)
class Tried:
    section: str  # a key of SECTIONS
    what: str  # the fault or input, in a few words
    how: str  # how the test makes it happen
    outcome: str  # what the test asserts


def tried(section: str, what: str, how: str, outcome: str) -> Callable[[F], F]:
    """Declare what the decorated test tries; it then appears on docs/reliability.md."""
    if section not in SECTIONS:
        raise ValueError(f"unknown section {section!r}")

    def mark(fn: F) -> F:
        fn.__tried__ = Tried(section, what, how, outcome)  # type: ignore[attr-defined]
        return fn

    return mark


def _param_text(value: Any) -> str:
    name = getattr(value, "name", None)
    return str(name) if isinstance(name, str) else str(value)


def applies_to(fn: Callable[..., Any]) -> str:
    """Given a test, return the cases its parametrize marks run, e.g. 'mysql, pgsql x ftp, s3'."""
    axes: list[str] = []
    for mark in reversed(getattr(fn, "pytestmark", [])):  # the outermost first
        if mark.name != "parametrize":
            continue
        ids = mark.kwargs.get("ids")
        values = ids if isinstance(ids, list | tuple) else [_param_text(v) for v in mark.args[1]]
        axes.append(", ".join(str(v) for v in values))
    return " x ".join(axes) or "—"


def declared() -> Iterator[tuple[str, str, Tried, str]]:
    """Yield (module, test name, declaration, cases) of every declared test, in page order."""
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        tests = [
            (fn.__code__.co_firstlineno, name, fn)
            for name, fn in inspect.getmembers(module, inspect.isfunction)
            if name.startswith("test_") and fn.__module__ == module_name
        ]
        for _, name, fn in sorted(tests):
            decl = getattr(fn, "__tried__", None)
            if isinstance(decl, Tried):
                yield module_name, name, decl, applies_to(fn)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """Return docs/reliability.md as the declared tests make it."""
    rows = list(declared())
    out = [
        "# Reliability: what was tried, how, and what happened",
        "",
        "Every row is one test of tiffin's suite that makes a fault happen for real (against the",
        "real servers of `tests/servers/`), feeds hostile input, or hunts for a leaked secret.",
        "The page is generated from the tests' own declarations and parametrizations",
        "(`tests/faults/tried.py`), and `tests/faults/test_reliability_page.py` fails when it",
        "differs: regenerate it with",
        "",
        "    .venv/bin/python -m tests.faults.tried > docs/reliability.md",
        "",
        "Run them with `.venv/bin/pytest -n 2 tests/faults tests/fuzz tests/e2e/test_hostile.py",
        "tests/e2e/test_hostile_dumps.py tests/e2e/test_client_commands.py",
        "tests/e2e/test_secrets_all.py`. Cases read SOURCE x TARGET where a test runs for several.",
        "",
        "Terms: *final name* is `LABEL_YYYY-MM-DD_HH:MM:SS_UTC.EXT` on the target; *published*",
        "means stored under it; a *leftover* is `NAME.partial` (folder, FTP, SSH) or an S3",
        "multipart upload not completed. `tiffin list` shows a leftover as incomplete, and",
        "`tiffin prune` removes it once it is 24 hours old (younger ones may be a run in",
        "progress). `--timeout` (default 120 s) bounds every wait on a target or database",
        "server: a database client that makes no progress for that long, and whose server does",
        "not answer a fresh `SELECT 1` within as long, is killed with its process group. The",
        "signal tests also pass with the suite started under SIGINT ignored (`nohup ... &`):",
        "",
        "    .venv/bin/python -c 'import os, signal, sys; signal.signal(signal.SIGINT,",
        "        signal.SIG_IGN); os.execvp(sys.argv[1], sys.argv[1:])' .venv/bin/pytest -n 2",
        "        tests/faults/test_interrupts.py",
        "",
        "One run at a time per label, source kind, source and target (`tiffin/engine/lock.py`).",
    ]
    for key, title in SECTIONS.items():
        section = [r for r in rows if r[2].section == key]
        if not section:
            continue
        out += ["", f"## {title}", ""]
        out.append("| What | Cases | How the test makes it happen | Outcome (asserted) | Test |")
        out.append("|---|---|---|---|---|")
        for module, name, decl, cases in section:
            path = module.replace(".", "/") + ".py"
            out.append(
                f"| {_cell(decl.what)} | {_cell(cases)} | {_cell(decl.how)} | "
                f"{_cell(decl.outcome)} | `{path}::{name}` |"
            )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    # Run as a script, this module is __main__: the tests' declarations are instances of
    # the Tried of tests.faults.tried, which render() must come from.
    sys.stdout.write(importlib.import_module("tests.faults.tried").render())

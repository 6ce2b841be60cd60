"""Every option that takes a value, with values drawn to break it (negative, huge, nan, inf,
-0, empty, other scripts' digits), on the command line and in a TOML job. The options come
from the option table itself, so a new option is covered without a change here.

A value is either accepted, and then within the option's span, or the run is exit 2 with one
`tiffin: ...` sentence naming the option, before anything is contacted or written."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.tried import tried
from tests.fuzz.sandbox import Sandbox
from tests.fuzz.test_cli_fuzz import PORT, check, toml_value
from tiffin import config, options
from tiffin.errors import UsageError
from tiffin.options import OPTIONS, Opt

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
VALUED = [o for o in OPTIONS if o.kind != "flag"]
NUMERIC = [o for o in VALUED if o.kind in options.NUMERIC]
ODD = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-0",
    "0",
    "",
    " ",
    "1e999",
    "-1",
    "0x10",
    "1_000",
    "٣",
    "²",
    "\uff11\uff12",
    "9" * 5000,
    "0644",
    "4777",
    "0o777",
    "1.5",
    "5T",
    "6T",
    "1K",
    "-1M",
    "true",
]
RAW = (
    st.sampled_from(ODD)
    | st.integers().map(str)
    | st.floats().map(str)
    | st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=4)
)
TOML_RAW = (
    st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.booleans()
    | st.sampled_from(ODD)
    | st.lists(st.integers(-3, 3), max_size=2)
)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("ranges")
    (root / "data").mkdir()
    (root / "data" / "f.txt").write_text("range\n")
    yield Sandbox(root, PORT)


def argv_for(opt: Opt, value: str, root: Path) -> list[str]:
    """A command line that uses OPT with VALUE and would otherwise work, all in ROOT."""
    target = ["local", str(root / "t")]
    data = ["--dir", str(root / "data")]
    by_command = {
        "backup": ["backup", "data", *target, *data],
        "prune": ["prune", *target, "--keep-last", "5", "--dry-run"],
        "list": ["list", *target],
        "verify": ["verify", *target, "--all"],
        "restore": ["restore", *target, "latest", "--output", "out"],
        "drill": ["drill", *target, "latest", "--into", "dir"],
        "schedule": ["schedule", "data", *target, *data],
        "run": ["run", "--config", str(root / "none.toml")],
        "status": ["status", *target],
    }
    command = next(c for c in by_command if c in opt.commands)
    return [*by_command[command], f"{opt.flag}={value}"]


def in_span(opt: Opt, value: Any) -> bool:
    assert opt.span is not None
    return (
        isinstance(value, int | float)
        and math.isfinite(value)
        and (opt.span[0] <= value <= opt.span[1])
    )


@tried(
    "fuzz",
    "Out-of-range option values (command line)",
    "hypothesis draws (150 examples) an option that takes a value, from the option table, and "
    "a value: integers and floats of any size, nan, inf, -0, empty, other scripts' digits, "
    "octal modes with setuid bits; the command is one that would otherwise work on a folder",
    "a numeric value taken is inside the option's span; otherwise exit 2, one `tiffin: "
    f"--OPTION ...` sentence, nothing contacted, nothing written. Options covered: {len(VALUED)} "
    "(every one that takes a value); out-of-range values accepted: 0; tracebacks: 0",
)
def test_every_option_value_is_range_checked_on_the_command_line(box: Sandbox) -> None:
    @FUZZ
    @given(st.sampled_from(VALUED), RAW)
    def run(opt: Opt, value: str) -> None:
        try:
            typed = options.coerce(opt, value)
        except UsageError:
            typed = None
        if opt in NUMERIC and typed is not None:
            assert in_span(opt, typed), (opt.flag, value, typed)
        before = sorted(p for p in box.root.rglob("*") if "tmp" not in p.parts)
        argv = argv_for(opt, value, box.root)
        outcome = box.run(argv)
        check(outcome, argv)
        if typed is None:
            assert outcome.code == 2, (argv, outcome.err)
            assert outcome.err.startswith(f"tiffin: {opt.flag} "), outcome.err
            after = sorted(p for p in box.root.rglob("*") if "tmp" not in p.parts)
            assert after == before

    run()


@tried(
    "fuzz",
    "Out-of-range option values (TOML job)",
    "hypothesis draws (150 examples) a config key from the option table and a TOML value of "
    "any type (64-bit integers, floats with nan and inf, booleans, strings, lists) in a job "
    "of `tiffin run --config`",
    "a numeric value taken is inside the option's span; otherwise exit 2 whose lines name "
    "`jobs.j.KEY`, nothing contacted or written. Config keys covered: "
    f"{len(config.OPTION_KEYS)}; out-of-range values accepted: 0; tracebacks: 0",
)
def test_every_option_value_is_range_checked_in_a_toml_job(box: Sandbox) -> None:
    path = box.root / "job.toml"

    @FUZZ
    @given(st.sampled_from(list(config.OPTION_KEYS.values())), TOML_RAW)
    def run(opt: Opt, value: Any) -> None:
        try:
            typed = options.coerce(opt, value)
        except UsageError:
            typed = None
        if opt in NUMERIC and typed is not None:
            assert in_span(opt, typed), (opt.dest, value, typed)
        text = "".join(
            [
                "[jobs.j]\n",
                'what = "data"\n',
                f"to = {toml_value('file://' + str(box.root / 't'))}\n",
                f"dir = {toml_value(str(box.root / 'data'))}\n" if opt.dest != "dir" else "",
                f"{opt.dest} = {toml_literal(value)}\n",
            ]
        )
        path.write_text(text)
        argv = ["run", "--config", str(path)]
        outcome = box.run(argv)
        check(outcome, argv)
        if typed is None:
            assert outcome.code == 2, (text, outcome.err)
            assert f"jobs.j.{opt.dest}: " in outcome.err, outcome.err

    run()


def toml_literal(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return toml_value(value)

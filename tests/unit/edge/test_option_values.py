"""Any value glued to its option (`--exclude=V`) reaches tiffin exactly as typed: argparse
before Python 3.12.3 dropped a value of exactly "--", so `--exclude=--` arrived empty."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from tiffin.cli import parse

VALUE = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), min_size=1)


@given(pattern=VALUE, folder=VALUE)
@example(pattern="--", folder="--")
@example(pattern="-", folder="---")
@example(pattern="--=--", folder="-- ")
def test_a_glued_option_value_is_read_exactly(pattern: str, folder: str) -> None:
    argv = ["backup", "data", "local", "/srv/b", f"--dir={folder}", f"--exclude={pattern}"]
    command, args, values = parse(argv)
    assert (command, args) == ("backup", ["data", "local", "/srv/b"])
    assert list(values["exclude"]) == [pattern] and values["dir"] == folder


def test_a_separate_double_dash_still_ends_the_options() -> None:
    _, args, values = parse(["backup", "data", "local", "--", "--x"])
    assert args == ["data", "local", "--x"] and "exclude" not in values

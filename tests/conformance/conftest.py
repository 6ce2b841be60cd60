"""Fixtures of the conformance suite: every test runs once per target kind in KINDS."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conformance.kinds import KINDS, Setup
from tests.servers.env import scrubbed_environ
from tiffin import targets
from tiffin.targets import Target


@pytest.fixture(autouse=True)
def _scrubbed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No proxy, agent, TIFFIN_* or AWS_* variable of this machine, and an empty HOME."""
    keep = scrubbed_environ()
    for name in list(os.environ):
        if name not in keep:
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture(params=sorted(KINDS))
def target_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def setup(target_kind: str, request: pytest.FixtureRequest, _scrubbed: None) -> Setup:
    return KINDS[target_kind](request)


@pytest.fixture
def make_target(setup: Setup) -> Iterator[Callable[[], Target]]:
    """make_target() returns a new connected Target on this test's own folder."""
    made: list[Target] = []

    def make() -> Target:
        target = targets.make_target(setup.url, setup.options)
        made.append(target)
        return target

    yield make
    for target in made:
        target.close()

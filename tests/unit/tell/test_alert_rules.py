"""docs/alerts.yml (SPEC §7) is what `promtool` accepts, and its rules fire when they should:
promtool (Debian's prometheus package) runs docs/alerts-test.yml, which feeds each rule the
series a run writes and checks the alerts at given times, and that it stays quiet before."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers.proc import require_executable

DOCS = Path(__file__).resolve().parents[3] / "docs"
TESTS = ("alerts-test.yml", "alerts-test-drill.yml")


def promtool(*args: str, cwd: Path = DOCS) -> subprocess.CompletedProcess[str]:
    exe = require_executable("promtool")
    return subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_accepts_the_rules():
    r = promtool("check", "rules", "alerts.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 4 rules found" in r.stdout


def test_the_rules_fire_as_their_tests_say():
    r = promtool("test", "rules", *TESTS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(TESTS)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("> 26 * 3600", "> 24 * 3600"),
        ("tiffin_last_status == 0", "tiffin_last_status == 1"),
        ("> 8 * 86400", "> 9 * 86400"),
        ("or tiffin_archive_last_status == 0", ""),
    ],
)
def test_the_rule_tests_catch_a_wrong_rule(tmp_path, old, new):
    """The tests would fail a rule that is wrong: each of these changes makes promtool fail."""
    text = (DOCS / "alerts.yml").read_text()
    assert old in text
    (tmp_path / "alerts.yml").write_text(text.replace(old, new))
    for name in TESTS:
        shutil.copy(DOCS / name, tmp_path)
    r = promtool("test", "rules", *TESTS, cwd=tmp_path)
    assert r.returncode != 0, r.stdout

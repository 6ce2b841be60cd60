"""Run the installed `tiffin` command as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.servers.env import tiffin_env


def tiffin_exe() -> str:
    found = Path(sys.executable).with_name("tiffin")
    if found.exists():
        return str(found)
    exe = shutil.which("tiffin")
    assert exe, "the tiffin command is not installed (pip install -e .)"
    return exe


def tiffin(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    expect: int | None = 0,
    timeout: float = 300,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `tiffin ARGS` in a clean environment; assert its exit status when EXPECT is set."""
    proc = subprocess.run(
        [tiffin_exe(), *args],
        env=dict(env) if env is not None else tiffin_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin.decode() if stdin is not None else None,
        stdin=subprocess.DEVNULL if stdin is None else None,
    )
    if expect is not None:
        assert proc.returncode == expect, (
            f"tiffin {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    assert "Traceback" not in proc.stderr or "--debug" in args, proc.stderr
    return proc


def backups(folder: Path) -> list[str]:
    """Names of the complete backups in a local folder (those with a manifest), sorted."""
    return sorted(p.name[: -len(".manifest.json")] for p in folder.glob("*.manifest.json"))


def manifest(folder: Path, name: str) -> dict[str, object]:
    return json.loads((folder / (name + ".manifest.json")).read_text())


def leftovers(folder: Path) -> list[str]:
    """Everything in FOLDER: after a failure it must be empty of the failed backup."""
    return sorted(os.listdir(folder)) if folder.exists() else []

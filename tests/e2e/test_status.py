"""tiffin status through the installed command, over real backups on local folders, an FTP
server that refuses, real drills: each verdict made to happen, the exit status, the table,
the JSON contract (docs/status.md) and the page's safety against hostile names."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.helpers import backups, tiffin
from tests.servers.env import tiffin_env
from tests.servers.ports import free_port

STAMP = re.compile(r"_(\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d)_UTC")


def backup(folder: Path, data: Path, env: dict[str, str], label: str, size: int = 10) -> str:
    """Take a real data backup of SIZE random bytes under LABEL into FOLDER; return its name.
    Random bytes do not compress, so a bigger SIZE is a bigger stored backup."""
    (data / "f.bin").write_bytes(os.urandom(size))
    before = set(backups(folder))
    tiffin(["backup", "data", "local", str(folder), "--dir", str(data), "--label", label], env)
    (name,) = set(backups(folder)) - before
    return name


def age(folder: Path, name: str, days: float) -> str:
    """Move a stored backup DAYS back in time, as if it had been taken then: its name, and its
    manifest's name and times. Return the new name."""
    manifest = json.loads((folder / f"{name}.manifest.json").read_text())
    when = datetime.strptime(STAMP.search(name)[1], "%Y-%m-%d_%H:%M:%S").replace(tzinfo=UTC)  # type: ignore[index]
    older = when - timedelta(days=days)
    new = name.replace(STAMP.search(name)[1], older.strftime("%Y-%m-%d_%H:%M:%S"))  # type: ignore[index]
    shift = timedelta(days=days)
    for key in ("started", "finished"):
        t = datetime.fromisoformat(manifest[key].replace("Z", "+00:00")) - shift
        manifest[key] = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    manifest["name"] = new
    (folder / name).rename(folder / new)
    (folder / f"{name}.manifest.json").unlink()
    (folder / f"{new}.manifest.json").write_text(json.dumps(manifest))
    return new


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A config of five jobs, one of each verdict's cause, with real backups and drills."""
    root = tmp_path_factory.mktemp("fleet")
    env = tiffin_env(root / "home")
    data = root / "data"
    data.mkdir()
    folders = {n: root / n for n in ("good", "stale", "broken", "drilled", "empty")}
    folders["empty"].mkdir()
    names: dict[str, list[str]] = {}
    names["good"] = [backup(folders["good"], data, env, "good", 1000)]
    names["good"].append(backup(folders["good"], data, env, "good", 3000))
    tiffin(["drill", "local", str(folders["good"]), "latest", "--into", "dir"], env)
    old = backup(folders["stale"], data, env, "stale", 500)
    names["stale"] = [age(folders["stale"], old, 3)]
    names["broken"] = [backup(folders["broken"], data, env, "broken") for _ in range(2)]
    (folders["broken"] / f"{names['broken'][1]}.manifest.json").unlink()  # the newest attempt
    names["drilled"] = [backup(folders["drilled"], data, env, "drilled", 700)]
    stored = folders["drilled"] / names["drilled"][0]
    with stored.open("r+b") as f:  # a bit flipped in the stored bytes: the drill must fail
        f.seek(40)
        byte = f.read(1)
        f.seek(40)
        f.write(bytes([byte[0] ^ 0xFF]))
    tiffin(
        ["drill", "local", str(stored.parent), names["drilled"][0], "--into", "dir"], env, expect=1
    )
    port = free_port()  # nobody listens: the FTP job's target cannot be reached
    jobs = {n: f"file://{folders[n]}" for n in folders}
    jobs["offline"] = f"ftp://u:chowmein@127.0.0.1:{port}/b"
    config = root / "jobs.toml"
    config.write_text(
        f'[defaults]\nwhat = "data"\ndir = "{data}"\ntimeout = 5\n'
        + "".join(
            f'[jobs.{n}]\nto = "{url}"\nlabel = "{n if n != "offline" else "off"}"\n'
            for n, url in jobs.items()
        )
    )
    return {"root": root, "env": env, "config": str(config), "names": names, "folders": folders}


def status(fleet: dict[str, object], *args: str, expect: int | None = None) -> str:
    env = fleet["env"]
    assert isinstance(env, dict)
    proc = tiffin(["status", "--config", str(fleet["config"]), *args], env, expect=expect)
    return proc.stdout


def test_every_verdict_and_its_reason_comes_from_the_targets(fleet: dict[str, object]) -> None:
    got = {j["job"]: j for j in json.loads(status(fleet, "--json", expect=1))}
    names = fleet["names"]
    assert isinstance(names, dict)
    assert list(got) == ["good", "stale", "broken", "drilled", "empty", "offline"]
    good = got["good"]
    assert good["verdict"] == "OK" and good["reasons"] == []
    assert good["newest"] == names["good"][1] and good["previous"] == names["good"][0]
    assert good["size"] > good["previous_size"] > 0
    assert good["change"] == pytest.approx(good["size"] / good["previous_size"] - 1, abs=1e-5)
    assert 0 <= good["age_seconds"] < 600
    assert good["drill"]["passed"] is True and good["drill"]["name"] == names["good"][1]
    assert good["archive"] is None  # no point-in-time archive yet
    assert good["complete"] == 2 and good["what"] == "data" and good["label"] == "good"
    stale = got["stale"]
    assert stale["verdict"] == "STALE" and stale["newest"] == names["stale"][0]
    assert 3 * 86400 <= stale["age_seconds"] < 3 * 86400 + 600
    assert "over 1d 2h" in stale["reasons"][0]
    broken = got["broken"]
    assert broken["verdict"] == "FAILED" and broken["newest"] == names["broken"][0]
    assert broken["reasons"] == [
        f"its newest backup {names['broken'][1]} is incomplete: it has no manifest"
    ]
    drilled = got["drilled"]
    assert drilled["verdict"] == "FAILED" and drilled["drill"]["passed"] is False
    assert "failed:" in drilled["reasons"][0] and drilled["newest"] == names["drilled"][0]
    assert got["empty"]["verdict"] == "FAILED" and got["empty"]["newest"] is None
    assert got["empty"]["reasons"] == ["it has no complete backup"]
    offline = got["offline"]
    assert offline["verdict"] == "FAILED" and offline["age_seconds"] is None
    assert "cannot be read" in offline["reasons"][0] and offline["target"].startswith("ftp://u@")


def test_the_table_has_a_row_per_job_and_says_why(fleet: dict[str, object]) -> None:
    lines = status(fleet, expect=1).splitlines()
    assert lines[0].split()[:3] == ["JOB", "VERDICT", "NEWEST"]
    rows = {ln.split()[0]: ln.split()[1] for ln in lines[1:7]}
    assert rows == {
        "good": "OK",
        "stale": "STALE",
        "broken": "FAILED",
        "drilled": "FAILED",
        "empty": "FAILED",
        "offline": "FAILED",
    }
    assert "passed" in lines[1] and "—" in lines[1]  # a drill passed; no archive
    assert any(ln.startswith("STALE stale: its newest complete backup is 3d") for ln in lines)
    assert lines[-1] == "6 jobs: 1 OK, 1 STALE, 4 FAILED."


def test_exit_is_zero_only_when_every_job_named_is_ok(fleet: dict[str, object]) -> None:
    env = fleet["env"]
    assert isinstance(env, dict)
    status(fleet, "good", expect=0)
    status(fleet, "good", "stale", expect=1)
    # a monitoring check's one line on stderr says which jobs are not OK
    proc = tiffin(["status", "--config", str(fleet["config"]), "good", "stale"], env, expect=1)
    assert proc.stderr == "tiffin: 1 of 2 jobs not OK: stale STALE\n"
    # --max-age moves the line between OK and STALE
    status(fleet, "stale", "--max-age", "4d", expect=0)
    out = status(fleet, "good", "--max-age", "1s", expect=1)
    assert "STALE" in out.splitlines()[1]


def test_a_target_named_on_the_command_line_shows_each_label(fleet: dict[str, object]) -> None:
    env = fleet["env"]
    folders = fleet["folders"]
    assert isinstance(env, dict) and isinstance(folders, dict)
    data = Path(str(fleet["root"])) / "data"
    mixed = Path(str(fleet["root"])) / "mixed"
    backup(mixed, data, env, "alpha")
    backup(mixed, data, env, "beta")
    got = json.loads(tiffin(["status", "local", str(mixed), "--json"], env).stdout)
    assert [j["job"] for j in got] == ["alpha-data", "beta-data"]
    assert all(j["verdict"] == "OK" for j in got)
    one = json.loads(tiffin(["status", f"file://{mixed}", "--label", "beta", "--json"], env).stdout)
    assert [j["job"] for j in one] == ["beta-data"]


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--max-age", "26"],
        ["status", "--max-age", "-1h"],
        ["status", "--max-age", "nan"],
        ["status", "local"],
        ["status", "local", "/x", "sub", "extra"],
        ["status", "nosuchjob", "--config", "/nonexistent.toml"],
    ],
)
def test_a_malformed_status_line_is_exit_2_in_one_sentence(argv: list[str], tmp_path: Path) -> None:
    proc = tiffin(argv, tiffin_env(tmp_path / "home"), expect=2)
    assert proc.stderr.startswith("tiffin: ") and proc.stderr.count("\n") == 1
    assert proc.stdout == ""


def test_a_newest_backup_whose_manifest_is_not_valid_is_a_failed_attempt(tmp_path: Path) -> None:
    env = tiffin_env(tmp_path / "home")
    data, folder = tmp_path / "data", tmp_path / "t"
    data.mkdir()
    older = backup(folder, data, env, "db", 300)
    newer = backup(folder, data, env, "db", 600)
    (folder / f"{newer}.manifest.json").write_text('{"name": "not this one"')
    got = json.loads(tiffin(["status", "local", str(folder), "--json"], env, expect=1).stdout)
    assert [(j["job"], j["verdict"], j["newest"]) for j in got] == [("db-data", "FAILED", older)]
    assert got[0]["reasons"][0].startswith(f"its newest backup {newer} is damaged: ")
    assert "not valid" in got[0]["reasons"][0]


def test_an_empty_target_is_failed_with_no_what(tmp_path: Path) -> None:
    env = tiffin_env(tmp_path / "home")
    (tmp_path / "t").mkdir()
    proc = tiffin(["status", "local", str(tmp_path / "t"), "--json"], env, expect=1)
    (job,) = json.loads(proc.stdout)
    assert job["verdict"] == "FAILED" and job["what"] is None and job["newest"] is None
    assert job["reasons"] == ["it holds no backup"]
    assert proc.stderr == f"tiffin: 1 of 1 jobs not OK: file://{tmp_path / 't'} FAILED\n"

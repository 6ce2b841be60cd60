"""SPEC §7 with the real Prometheus stack from Debian: what `--metrics-file` writes is what
Prometheus reads through node_exporter's textfile collector, what `--pushgateway` pushes is
what Prometheus reads through the Pushgateway, and neither a dead gateway nor a bad file ever
fails a backup. The series are asked for as a user's alert rule would (docs/alerts.yml)."""

from __future__ import annotations

import shutil
import textwrap
import time
import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import tiffin

SECRET = "pw-Zq81-never-shown"


def series(path: Path, name: str, job: str) -> list[tuple[dict[str, str], float]]:
    """Given a metrics file, return the samples of NAME whose `job` label is JOB."""
    found = []
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("job") == job:
                found.append((sample.labels, sample.value))
    return found


def one(path: Path, name: str, job: str) -> float:
    found = series(path, name, job)
    assert len(found) == 1, (name, job, path.read_text())
    return found[0][1]


def folder(tmp_path: Path, name: str = "data") -> Path:
    data = tmp_path / name
    data.mkdir()
    (data / "a.txt").write_text("the data\n" * 100)
    return data


def test_a_good_then_a_failed_backup_as_prometheus_sees_them(
    prometheus, node_exporter, tmp_path, tiffin_env
):
    env = tiffin_env()
    prom = node_exporter.textfiles / f"good-{uuid.uuid4().hex[:8]}.prom"
    data, store = folder(tmp_path), tmp_path / "store"
    label = "web" + uuid.uuid4().hex[:6]
    job = f"{label}-data"
    args = ["backup", "data", "local", str(store), "--dir", str(data), "--label", label]
    args += ["--metrics-file", str(prom)]
    t0 = time.time()
    tiffin(args, env)
    t1 = time.time()
    success = one(prom, "tiffin_last_success_timestamp_seconds", job)
    assert t0 <= success <= t1
    assert one(prom, "tiffin_last_size_bytes", job) == sum(
        p.stat().st_size for p in store.glob("*.tar.gz")
    )
    assert oct(prom.stat().st_mode & 0o777) == "0o644"  # node_exporter runs as its own user
    # Prometheus has it, with the labels SPEC §7 names.
    got = prometheus.wait_for(f'tiffin_last_status{{job="{job}"}} == 1')
    assert got[0]["metric"]["what"] == "data"
    assert got[0]["metric"]["target"] == f"file://{store}"

    shutil.rmtree(data)  # the next run of the same job fails for real
    t2 = time.time()
    r = tiffin(args, env, expect=1)
    assert "FAILED" in r.stderr
    assert one(prom, "tiffin_last_status", job) == 0
    assert t2 <= one(prom, "tiffin_last_run_timestamp_seconds", job) <= time.time()

    prometheus.wait_for(f'tiffin_last_status{{job="{job}"}} == 0')
    kept = prometheus.query(f'tiffin_last_success_timestamp_seconds{{job="{job}"}}')
    assert [float(k["value"][1]) for k in kept] == [success]  # the failure kept the success
    # and the alert rule's question answers "failed", not "stale"
    assert (
        prometheus.query(f'time() - tiffin_last_success_timestamp_seconds{{job="{job}"}} > 93600')
        == []
    )


def test_pushed_series_come_back_through_prometheus(prometheus, pushgateway, tmp_path, tiffin_env):
    env = tiffin_env()
    data, store = folder(tmp_path), tmp_path / "store"
    label = "push" + uuid.uuid4().hex[:6]
    job = f"{label}-data"
    gateway = f"http://tiffin:{SECRET}@127.0.0.1:{pushgateway.port}/"
    args = ["backup", "data", "local", str(store), "--dir", str(data), "--label", label]
    args += ["--pushgateway", gateway]
    t0 = time.time()
    r = tiffin(args, env)
    t1 = time.time()
    assert "WARNING" not in r.stdout
    got = prometheus.wait_for(f'tiffin_last_success_timestamp_seconds{{job="{job}"}}')
    assert t0 <= float(got[0]["value"][1]) <= t1
    assert got[0]["metric"]["target"] == f"file://{store}"
    success = float(got[0]["value"][1])

    shutil.rmtree(data)
    r = tiffin(args, env, expect=1)
    prometheus.wait_for(f'tiffin_last_status{{job="{job}"}} == 0')
    kept = prometheus.query(f'tiffin_last_success_timestamp_seconds{{job="{job}"}}')
    assert [float(k["value"][1]) for k in kept] == [success]
    everything = prometheus.query(f'{{job="{job}"}}')
    assert len(everything) >= 5
    assert SECRET not in repr(everything) + r.stdout + r.stderr


def test_config_jobs_are_labelled_by_their_names(tmp_path, tiffin_env):
    data = folder(tmp_path)
    prom = tmp_path / "m.prom"
    config = tmp_path / "tiffin.toml"
    config.write_text(
        textwrap.dedent(f"""
        [defaults]
        what = "data"
        metrics_file = "{prom}"
        [jobs.site]
        to = "file://{tmp_path}/store"
        dir = "{data}"
        [jobs.broken]
        to = "file://{tmp_path}/store"
        dir = "{tmp_path}/missing"
        """)
    )
    tiffin(["run", "--config", str(config)], tiffin_env(), expect=1)
    assert one(prom, "tiffin_last_status", "site") == 1
    assert one(prom, "tiffin_last_status", "broken") == 0
    assert series(prom, "tiffin_last_success_timestamp_seconds", "broken") == []


def test_a_drill_records_its_own_series(tmp_path, tiffin_env):
    env = tiffin_env()
    data, store = folder(tmp_path), tmp_path / "store"
    prom = tmp_path / "m.prom"
    tiffin(["backup", "data", "local", str(store), "--dir", str(data), "--label", "dr"], env)
    drill = ["drill", "local", str(store), "latest", "--into", "dir", "--label", "dr"]
    tiffin([*drill, "--metrics-file", str(prom)], env)
    assert one(prom, "tiffin_drill_last_status", "dr-data") == 1
    passed = one(prom, "tiffin_drill_last_success_timestamp_seconds", "dr-data")
    for p in store.glob("*.tar.gz"):  # the stored backup is damaged: the next drill fails
        p.write_bytes(p.read_bytes()[:40])
    tiffin([*drill, "--metrics-file", str(prom)], env, expect=1)
    assert one(prom, "tiffin_drill_last_status", "dr-data") == 0
    assert one(prom, "tiffin_drill_last_success_timestamp_seconds", "dr-data") == passed
    assert series(prom, "tiffin_last_status", "dr-data") == []  # a drill is not a backup run

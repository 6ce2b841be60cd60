"""tiffin schedule --kubernetes: the CronJob it prints, read by the `kubernetes` client's own
models (V1CronJob), every field SPEC §8 names asserted, no secret value in it whatever the
secrets hold, and the container's command line, as the manifest writes it, run on this
machine against real PostgreSQL and S3 servers: it must take the backup.

No container runtime or cluster is available here (docs/kubernetes.md says what that leaves
unproven)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient, V1CronJob

from tests.e2e.helpers import tiffin, tiffin_exe
from tests.servers.env import tiffin_env
from tiffin.commands.kube import MOUNT_DIR


def model(text: str) -> tuple[dict[str, Any], V1CronJob]:
    """Given the printed YAML, return it as data and as the client's V1CronJob. The model
    keeps only the fields it knows: what it writes back must be all that was read."""
    doc = yaml.safe_load(text)
    api = ApiClient()
    job = api._ApiClient__deserialize(doc, "V1CronJob")  # type: ignore[attr-defined]
    assert isinstance(job, V1CronJob)
    assert api.sanitize_for_serialization(job) == doc, "a field the model does not know"
    return doc, job


def schedule(args: list[str], env: dict[str, str], expect: int = 0) -> str:
    proc = tiffin(["schedule", *args, "--kubernetes"], env, expect=expect)
    return proc.stdout


def test_the_cronjob_is_a_v1_cronjob_with_every_promised_field(tmp_path: Path) -> None:
    env = tiffin_env(tmp_path / "home", TIFFIN_DB_PASSWORD="pw1", AWS_SECRET_ACCESS_KEY="sk1")
    pwfile = tmp_path / "pw"
    pwfile.write_text("from-a-file\n")
    args = [
        "pgsql", "s3", "bucket", "nightly", "--host", "db.internal", "--database", "shop",
        "--password-file", str(pwfile), "--label", "shop", "--namespace", "backups",
        "--secret", "shop-secrets", "--image", "registry.example/tiffin:0.1.0",
    ]  # fmt: skip
    text = schedule(args, env)
    doc, job = model(text)
    assert job.api_version == "batch/v1" and job.kind == "CronJob"
    assert job.metadata.namespace == "backups" and job.metadata.name.startswith("tiffin-")
    spec = job.spec
    minute, hour, *rest = spec.schedule.split()
    assert 0 <= int(minute) < 60 and 0 <= int(hour) < 24 and rest == ["*", "*", "*"]
    assert spec.time_zone == "Etc/UTC"
    assert spec.concurrency_policy == "Forbid"
    assert spec.starting_deadline_seconds == 3600
    assert spec.successful_jobs_history_limit == 3 and spec.failed_jobs_history_limit == 3
    assert spec.job_template.spec.backoff_limit == 0
    pod = spec.job_template.spec.template.spec
    assert pod.restart_policy == "Never"
    assert pod.security_context.run_as_non_root is True
    (box,) = pod.containers
    assert box.image == "registry.example/tiffin:0.1.0" and box.command == ["tiffin"]
    assert box.args[:5] == ["backup", "pgsql", "s3://bucket/nightly", "--label", "shop"]
    assert box.args[box.args.index("--password-file") + 1] == f"{MOUNT_DIR}/password-file"
    refs = {e.name: e.value_from.secret_key_ref for e in box.env if e.value_from}
    assert {n: (r.name, r.key) for n, r in refs.items()} == {
        "AWS_SECRET_ACCESS_KEY": ("shop-secrets", "AWS_SECRET_ACCESS_KEY"),
        "TIFFIN_DB_PASSWORD": ("shop-secrets", "TIFFIN_DB_PASSWORD"),
    }
    assert [e.name for e in box.env if not e.value_from] == ["HOME"]
    (vol,) = pod.volumes
    assert vol.secret.secret_name == "shop-secrets"
    assert [(i.key, i.path) for i in vol.secret.items] == [("password-file", "password-file")]
    assert [(m.mount_path, m.read_only) for m in box.volume_mounts] == [(MOUNT_DIR, True)]
    for secret in ("pw1", "sk1", "from-a-file"):
        assert secret not in text
    # the same again: the same time (drawn from the job id), the same document
    assert schedule(args, env) == text
    assert (
        doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"][0]["secret"][
            "defaultMode"
        ]
        == 0o440
    )


def test_at_and_cron_set_the_schedule_and_ssh_gets_its_key_and_known_hosts(tmp_path: Path) -> None:
    env = tiffin_env(tmp_path / "home")
    _doc, job = model(schedule(["mysql", "ssh", "b@backup.example:2222", "--at", "03:30"], env))
    assert job.spec.schedule == "30 3 * * *"
    pod = job.spec.job_template.spec.template.spec
    (box,) = pod.containers
    assert box.args[-2:] == ["--ssh-key", f"{MOUNT_DIR}/ssh-key"]
    mounts = {m.mount_path: m.sub_path for m in box.volume_mounts}
    assert mounts == {MOUNT_DIR: None, "/home/tiffin/.ssh/known_hosts": "known_hosts"}
    assert {i.key for i in pod.volumes[0].secret.items} == {"ssh-key", "known_hosts"}
    _, job = model(schedule(["mysql", "ftp", "u@h", "--cron", "15 2 * * mon-fri"], env))
    assert job.spec.schedule == "15 2 * * mon-fri"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["data", "s3", "b", "--dir", "/srv"], "runs database jobs"),
        (["sqlite", "s3", "b", "--file", "/x.db"], "runs database jobs"),
        (["mysql", "local", "/var/backups"], "a local folder"),
        (["mysql", "s3", "b", "--socket", "/run/mysqld.sock"], "--host, not --socket"),
        (["mysql", "s3", "b", "--namespace", "Bad_NS"], "--namespace"),
        (["mysql", "s3", "b", "--secret", "-x"], "--secret"),
        (["mysql", "s3", "b", "--image", "a b"], "--image"),
        (["mysql", "s3", "b", "--cron", "@reboot"], "@reboot"),
        (["mysql", "s3", "b", "--systemd"], "one backup"),
        (["--config", "/nonexistent.toml"], "one backup"),
    ],
)
def test_what_a_pod_cannot_run_is_exit_2_before_anything(
    args: list[str], says: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    proc = tiffin(["schedule", *args, "--kubernetes"], tiffin_env(home), expect=2)
    assert proc.stderr.startswith("tiffin: ") and says in proc.stderr, proc.stderr
    assert proc.stdout == "" and list(home.iterdir()) == []


def test_the_containers_command_as_written_takes_the_backup(
    postgres: Any, s3_server: Any, tmp_path: Path
) -> None:
    """Run the manifest's command and arguments with the environment Kubernetes would give
    the pod: its plain values, and each secretKeyRef filled from the Secret's data."""
    postgres.sql("DROP DATABASE IF EXISTS kube; CREATE DATABASE kube;")
    postgres.sql("CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 50);", "kube")
    bucket = s3_server.make_bucket("kube-cronjob")
    secrets = {**s3_server.env(), **postgres.client_env()}
    env = tiffin_env(tmp_path / "home", **secrets)
    text = schedule(
        ["pgsql", "s3", bucket, "nightly", *postgres.conn_args(), "--database", "kube",
         "--label", "kube"],
        env,
    )  # fmt: skip
    doc, _job = model(text)
    box = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    pod_env = {}
    for e in box["env"]:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        pod_env[e["name"]] = secrets[ref["key"]] if ref else e["value"]
    assert set(pod_env) >= {"TIFFIN_DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"}
    for key in ("AWS_SECRET_ACCESS_KEY", "TIFFIN_DB_PASSWORD"):
        assert secrets[key] not in text
    # The image's tiffin is on its PATH; here it is this checkout's. The image's HOME
    # (/home/tiffin) stands at a temp folder: nothing is written outside the test's own.
    run_env = tiffin_env(tmp_path / "pod-home", **pod_env)
    run_env["HOME"] = str(tmp_path / "pod-home")
    run_env["PATH"] = f"{Path(tiffin_exe()).parent}:{run_env['PATH']}"
    proc = subprocess.run(
        [*box["command"], *box["args"]],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Backup kube_" in proc.stdout and "completed" in proc.stdout
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.startswith("nightly/kube_") and k.endswith(".sql.gz") for k in keys), keys
    got = tiffin(["restore", "s3", bucket, "nightly", "latest", "--output", "-"], env)
    assert 'COPY "public"."t"' in got.stdout and "\n50\n\\.\n" in got.stdout

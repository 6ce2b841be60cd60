"""schedule and run take --physical: the crontab line and a config job make base backups."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.crontab import Crontab
from tests.e2e.helpers import backups, tiffin, tiffin_exe
from tests.e2e.test_schedule import run_like_cron
from tests.servers.postgres import Postgres


def test_a_scheduled_physical_backup_runs_from_cron(postgres: Postgres, tmp_path: Path) -> None:
    crontab = Crontab(tmp_path)
    out = tmp_path / "b"
    env = crontab.env(HOSTNAME="pg-1", **postgres.client_env())
    args = ["schedule", "pgsql", "local", str(out), *postgres.conn_args(), "--physical"]
    tiffin([*args, "--at", "03:30"], env)
    [(_, when, command)] = crontab.jobs()
    assert when == "30 3 * * *"
    assert command.startswith(f"{tiffin_exe()} backup pgsql file://{out} --label pg-1 ")
    assert "--physical" in command.split() and "Pg-S3cret-pw" not in crontab.text()
    r = run_like_cron(command, crontab.home)
    assert r.returncode == 0, r.stderr
    [name] = backups(out)
    assert name.startswith("pg-1_") and name.endswith(".pgbase.tar.gz")


def test_a_config_job_with_physical_true_makes_a_base_backup(
    postgres: Postgres, tmp_path: Path
) -> None:
    out = tmp_path / "b"
    config = tmp_path / "tiffin.toml"
    config.write_text(
        f"""
[jobs.cluster]
what = "pgsql"
to = "file://{out}"
label = "conf-host"
physical = true
host = "{postgres.host}"
port = {postgres.port}
user = "{postgres.user}"
compress = "zstd"
"""
    )
    env = Crontab(tmp_path).env(**postgres.client_env())
    tiffin(["run", "--config", str(config)], env)
    [name] = backups(out)
    assert name.startswith("conf-host_") and name.endswith(".pgbase.tar.zst")

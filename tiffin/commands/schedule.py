"""tiffin schedule / unschedule: a job's line in the user's crontab (or a systemd timer), its
secrets in a 0600 file the line refers to, never on the line itself."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tiffin.commands import cron
from tiffin.commands.units import exec_text, unit_files
from tiffin.engine import process, safefile
from tiffin.errors import TiffinError, ToolFailed, UsageError
from tiffin.job import BackupJob
from tiffin.sources import SOURCES

SECRETS_DIR = "~/.config/tiffin/secrets"
SYSTEMD_DIR = "~/.config/systemd/user"
TLS_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR")
MAIL_VARS = ("TIFFIN_SMTP_URL", "TIFFIN_MAIL_FROM")
DB_VARS = {
    "mysql": ("TIFFIN_DB_PASSWORD", "MYSQL_PWD"),
    "pgsql": ("TIFFIN_DB_PASSWORD", "PGPASSWORD"),
    "pgbase": ("TIFFIN_DB_PASSWORD", "PGPASSWORD"),
    "mariabackup": ("TIFFIN_DB_PASSWORD", "MYSQL_PWD"),
}
S3_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_CA_BUNDLE",
)


@dataclass(frozen=True)
class Plan:
    """One job to schedule: its id, the command that runs it (no secret in it), the
    environment it needs, written to its 0600 secrets file, and the cron time it gets when
    neither --at/--cron nor an earlier line gives one (None: a random time of day)."""

    job_id: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict, repr=False)
    every: str | None = None


def tiffin_argv() -> list[str]:
    """Return the absolute command that runs this tiffin (cron's PATH is bare)."""
    arg0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(arg0) == "tiffin":
        found = os.path.abspath(arg0) if os.sep in arg0 else shutil.which(arg0)
        if found and os.access(found, os.X_OK):
            return [found]
    found = shutil.which("tiffin")
    return [os.path.abspath(found)] if found else [sys.executable, "-m", "tiffin.entry"]


def job_id(identity: Sequence[Any]) -> str:
    """Given what identifies a job, return its stable short id (8 hex digits)."""
    return hashlib.sha256(json.dumps(list(identity)).encode()).hexdigest()[:8]


def identity(job: BackupJob) -> list[Any]:
    """Given a backup job, return what tells it apart: what, from where, to where, its label."""
    src = job.source
    where: list[Any] = []
    if src.what == "data":
        where = [os.path.abspath(os.path.expanduser(src.dir))]
    elif src.what == "sqlite":
        where = [os.path.abspath(os.path.expanduser(src.file or ""))]
    else:
        where = [src.conn.host, src.conn.port, src.conn.socket, sorted(src.databases)]
    return ["backup", src.what, *where, job.target.redacted(), job.label]


def option_value(flag: str, value: str) -> list[str]:
    """Given an option and its value, return them as argv words that argparse reads back: a
    value starting with '-' would be taken for an option, so it is joined with '='."""
    return [f"{flag}={value}"] if value.startswith("-") else [flag, value]


def job_env(job: BackupJob, with_target_password: bool = True) -> dict[str, str]:
    """Given a job, return the environment it needs under cron, secrets included: the target's
    password, the variables of its database, S3 and mail settings, as set now."""
    names: list[str] = [*DB_VARS.get(job.source.what, ())]
    if job.target.kind in ("s3", "s3multi"):
        names += S3_VARS
    if job.emails:
        names += MAIL_VARS
    if job.emails or job.target.kind in ("ftps", "s3", "s3multi"):
        names += TLS_VARS
    if job.target.kind in ("ftp", "ftps"):
        names.append("TIFFIN_FTP_PASSWORD")
    env = {n: os.environ[n] for n in names if os.environ.get(n)}
    if with_target_password and job.target.password is not None:
        env["TIFFIN_FTP_PASSWORD"] = job.target.password
    # A command-line job's Apprise URLs and a Pushgateway URL with a password are not on its
    # line (jobargs.off_the_line): the job finds them here (jobargs.watching).
    if with_target_password and job.notify:
        env["TIFFIN_NOTIFY"] = " ".join(job.notify)
    if with_target_password and job.pushgateway:
        env["TIFFIN_PUSHGATEWAY_URL"] = job.pushgateway  # the line's own wins, if it has one
    for key, value in env.items():  # the secrets file holds KEY=VALUE lines, as config reads
        if any(c in "\n\r\0" or "\ud800" <= c <= "\udfff" for c in value):
            raise UsageError(
                f"{key} holds a line break, a NUL or bytes that are not UTF-8: it cannot be "
                "kept for the scheduled job"
            )
    return env


def plan_backup(job: BackupJob, args: Sequence[str]) -> Plan:
    """Given a checked backup job and its options as argv words but --label (tiffin/jobargs.py
    option_args), return its plan: the job's target as a URL without password, its label
    fixed, its options as given."""
    argv = [
        *tiffin_argv(),
        "backup",
        SOURCES[job.source.what].physical_of or job.source.what,  # pgsql/mysql --physical, as typed
        job.target.redacted(),
        *option_value("--label", job.label),
        *args,
    ]
    return Plan(job_id(identity(job)), tuple(argv), job_env(job))


def plan_config(path: str, name: str, job: BackupJob, args: Sequence[str]) -> Plan:
    """Given a config file, one of its jobs and the run options as argv words, return the plan
    that runs it."""
    if name.startswith("-"):  # after "--", or argparse would take the name for an option
        argv = [*tiffin_argv(), "run", "--config", path, *args, "--", name]
    else:
        argv = [*tiffin_argv(), "run", name, "--config", path, *args]
    return Plan(job_id(["config", path, name]), tuple(argv), job_env(job, False))


# ---------------------------------------------------------------- files


def _dir(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def secrets_path(jid: str) -> str:
    return os.path.join(_dir(SECRETS_DIR), f"{jid}.env")


def _write_private(path: str, text: str, mode: int = 0o600) -> None:
    """Write TEXT to PATH atomically; the file has MODE from its first byte, and nothing that
    stands at PATH or its temp name is written through."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    safefile.write_new(path, text.encode("utf-8"), mode)


def write_secrets(plan: Plan) -> str | None:
    """Given a plan, write its environment to its 0600 secrets file and return the path; with
    nothing to keep, remove a file left from before and return None."""
    path = secrets_path(plan.job_id)
    if not plan.env:
        remove_file(path)
        return None
    lines = [f"# tiffin job {plan.job_id}: the environment of its scheduled runs"]
    _write_private(path, "\n".join([*lines, *(f"{k}={v}" for k, v in plan.env.items())]) + "\n")
    return path


def remove_file(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def command_of(plan: Plan) -> list[str]:
    """Given a plan, return its command: its argv with --env-file naming its secrets file (before
    a "--" that ends the options)."""
    if not plan.env:
        return list(plan.argv)
    end = plan.argv.index("--") if "--" in plan.argv else len(plan.argv)
    return [*plan.argv[:end], "--env-file", secrets_path(plan.job_id), *plan.argv[end:]]


# ---------------------------------------------------------------- crontab


def read_crontab() -> str | None:
    """Return the user's crontab ("" when there is none), or None when the crontab command is
    not installed. Raise ToolFailed if crontab -l fails otherwise."""
    exe = process.which("crontab")
    if exe is None:
        return None
    try:
        text = process.run([exe, "-l"], name="crontab")
    except ToolFailed as exc:
        if "no crontab for" in exc.stderr_tail:
            return ""
        raise
    if "\ufffd" in text:  # read as UTF-8 with replacements: writing it back would change it
        raise TiffinError("the crontab is not UTF-8 text: tiffin will not rewrite it")
    return text


def write_crontab(text: str) -> None:
    """Install TEXT as the user's crontab. Raise ToolFailed, quoting crontab, if it refuses."""
    exe = process.which("crontab")
    if exe is None:
        raise TiffinError("the crontab command is not installed: install cron, or use --systemd")
    process.run([exe, "-"], name="crontab", input=text.encode())


def schedule_cron(plans: Sequence[Plan], when: str | None) -> list[str]:
    """Given plans and a cron time (None: random for a new job, unchanged for a known one),
    put their lines in the crontab; return what to tell the user."""
    text = read_crontab()
    if text is None:
        raise TiffinError("the crontab command is not installed: install cron, or use --systemd")
    tab = cron.parse_crontab(text)
    times = {jid: t for jid, t, _ in tab.jobs()}
    report: list[str] = []
    for plan in plans:  # every line is made (or refused) before any file is written
        time = when or times.get(plan.job_id) or plan.every or cron.random_time()
        line = cron.job_line(time, cron.command_text(command_of(plan)), plan.job_id)
        tab = tab.with_job(plan.job_id, line)
        report += [f"Scheduled tiffin job {plan.job_id} in the crontab:", f"  {line}"]
        if plan.env:
            report.append(f"  its secrets are in {secrets_path(plan.job_id)} (mode 0600)")
    written: list[str] = []
    try:
        for plan in plans:
            secrets = write_secrets(plan)
            if secrets:
                written.append(secrets)
        write_crontab(cron.render_crontab(tab))
    except BaseException:
        for path in written:  # a secret of a job that did not make it into the crontab
            if os.path.basename(path).removesuffix(".env") not in times:
                remove_file(path)
        raise
    return report + _drop_units({plan.job_id for plan in plans})


def _drop_units(ids: set[str]) -> list[str]:
    """Remove the systemd units of IDS, which have just been scheduled in the crontab: a job
    lives in one scheduler, or it would run twice. Return what to tell the user."""
    report: list[str] = []
    for jid in sorted(ids & set(_systemd_jobs())):
        _remove_units(jid)
        report.append(
            f"  it was a systemd job: its units are removed; stop them with: systemctl --user "
            f"daemon-reload && systemctl --user stop tiffin-{jid}.timer tiffin-{jid}.service"
        )
    return report


def drop_cron_lines(ids: set[str]) -> list[str]:
    """Remove the crontab lines of IDS, which have just been written as systemd units: a job
    lives in one scheduler, or it would run twice. Return what to tell the user."""
    try:
        text = read_crontab()
    except TiffinError as exc:  # the units stand: say what could not be checked
        return [f"  (the crontab could not be read to remove an old line of this job: {exc})"]
    if not text:
        return []
    tab = cron.parse_crontab(text)
    moved = ids & {jid for jid, _, _ in tab.jobs()}
    if moved:
        write_crontab(cron.render_crontab(tab.without(moved)))
    return [f"  its line in the crontab (job {jid}) is removed." for jid in sorted(moved)]


def _remove_units(jid: str) -> None:
    wants = os.path.join(_dir(SYSTEMD_DIR), "timers.target.wants", f"tiffin-{jid}.timer")
    for path in (wants, unit_path(jid, "timer"), unit_path(jid, "service")):
        remove_file(path)


# ---------------------------------------------------------------- systemd


def unit_path(jid: str, suffix: str) -> str:
    return os.path.join(_dir(SYSTEMD_DIR), f"tiffin-{jid}.{suffix}")


def schedule_systemd(plans: Sequence[Plan], when: str | None) -> list[str]:
    """Given plans and a cron time (None: random), write their user units; return what to tell
    the user, including how to enable them. A crontab line of the same job is removed."""
    if when is not None:
        cron.on_calendar(when)  # refused before any file is written
    units = [
        (plan, *unit_files(plan.job_id, command_of(plan), when or plan.every)) for plan in plans
    ]
    report: list[str] = []
    for plan, service, timer in units:
        write_secrets(plan)
        _write_private(unit_path(plan.job_id, "service"), service, 0o644)
        _write_private(unit_path(plan.job_id, "timer"), timer, 0o644)
        unit = f"tiffin-{plan.job_id}.timer"
        report += [
            f"Scheduled tiffin job {plan.job_id} as {unit_path(plan.job_id, 'timer')}"
            f" (and .service):",
            f"  ExecStart={exec_text(command_of(plan))}",
            f"  enable it with: systemctl --user daemon-reload && "
            f"systemctl --user enable --now {unit}",
            "  (and, to run while you are logged out: loginctl enable-linger $USER)",
        ]
    return report + drop_cron_lines({plan.job_id for plan in plans})


def _systemd_jobs() -> dict[str, tuple[str, str]]:
    """Return the systemd jobs: id -> (OnCalendar, ExecStart)."""
    found: dict[str, tuple[str, str]] = {}
    folder = _dir(SYSTEMD_DIR)
    if not os.path.isdir(folder):
        return found
    for entry in sorted(os.listdir(folder)):
        if not (entry.startswith("tiffin-") and entry.endswith(".timer")):
            continue
        jid = entry[len("tiffin-") : -len(".timer")]
        calendar = _unit_value(os.path.join(folder, entry), "OnCalendar")
        found[jid] = (calendar, _unit_value(unit_path(jid, "service"), "ExecStart"))
    return found


def _unit_value(path: str, key: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith(key + "="):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return "?"


# ---------------------------------------------------------------- list, unschedule


def listing() -> list[str]:
    """Return the lines of `tiffin schedule --list`: each job's id, when it runs, its command."""
    text = read_crontab()
    jobs = cron.parse_crontab(text).jobs() if text else []
    rows = [(jid, t, cmd) for jid, t, cmd in jobs]
    rows += [(jid, f"systemd {cal}", cmd) for jid, (cal, cmd) in _systemd_jobs().items()]
    if not rows:
        return ["No tiffin job is scheduled."]
    width = max(len(r[1]) for r in rows)
    return [f"{'JOB_ID':<8}  {'WHEN':<{width}}  COMMAND"] + [
        f"{jid:<8}  {t:<{width}}  {cmd}" for jid, t, cmd in rows
    ]


def unschedule(ids: Sequence[str], every: bool) -> list[str]:
    """Given job ids (or EVERY), remove their crontab lines, systemd units and secrets files;
    return what was done. Raise TiffinError naming an unknown id before anything is removed."""
    text = read_crontab()
    tab = cron.parse_crontab(text) if text else None
    in_cron = {jid for jid, _, _ in tab.jobs()} if tab else set()
    in_systemd = set(_systemd_jobs())
    wanted = (in_cron | in_systemd) if every else set(ids)
    unknown = sorted(wanted - in_cron - in_systemd)
    if unknown:
        raise TiffinError(
            f"no scheduled tiffin job {', '.join(unknown)}: see tiffin schedule --list"
        )
    if not wanted:
        return ["No tiffin job is scheduled."]
    report: list[str] = []
    if tab is not None and wanted & in_cron:
        write_crontab(cron.render_crontab(tab.without(wanted)))
        report += [f"Removed tiffin job {j} from the crontab." for j in sorted(wanted & in_cron)]
    for jid in sorted(wanted & in_systemd):
        _remove_units(jid)
        report.append(
            f"Removed tiffin job {jid}'s systemd units; stop it with: systemctl --user "
            f"daemon-reload && systemctl --user stop tiffin-{jid}.timer tiffin-{jid}.service"
        )
    for jid in sorted(wanted):
        if remove_file(secrets_path(jid)):
            report.append(f"Removed its secrets file {secrets_path(jid)}.")
    return report

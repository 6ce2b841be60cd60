"""TOML jobs: a [defaults] table and [jobs.NAME] tables -> jobs, every error at once.

A job's keys are the `dest`s of the backup options (keep_daily = 7, email = ["a@b"], ...), the
same table that feeds the command line, plus `what`, `to` (a target URL) and `path` (a folder
under it). [defaults] holds any of them; a job's own value replaces the default. A job with
what = "binlog" is a BinlogJob (`tiffin binlog`), every other a BackupJob: each caller takes
both kinds, or says which one it cannot handle, never skips one.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from tiffin import jobargs, options
from tiffin.errors import UsageError
from tiffin.job import BackupJob, BinlogJob, TargetURL, looks_like_url
from tiffin.sources import TYPED, WHATS

ConfigJob = BackupJob | BinlogJob
DEFAULT_PATH = "~/.config/tiffin/tiffin.toml"
# Loading an environment file changes the whole process: only the command line may ask it.
NOT_IN_CONFIG = frozenset({"env_file"})
OPTION_KEYS: dict[str, options.Opt] = {
    o.dest: o
    for o in options.OPTIONS
    if (options.BACKUP in o.commands or "binlog" in o.commands)
    and o.config
    and o.dest not in NOT_IN_CONFIG
}
TARGET_KEYS = ("what", "to", "path")
KEYS = (*TARGET_KEYS, *OPTION_KEYS)
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")
# A config or env file is text a person wrote: /dev/zero given as one must not fill memory.
TEXT_MAX = 16 << 20
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


class ConfigError(UsageError):
    """A config file is malformed; str() lists every error, each with its path."""

    def __init__(self, path: str, errors: list[str]) -> None:
        self.errors = errors
        count = "1 error" if len(errors) == 1 else f"{len(errors)} errors"
        super().__init__(f"{path} has {count}:\n  " + "\n  ".join(errors))


def config_path(given: str | None) -> str:
    """Given --config (or None), return the config file's absolute path."""
    return os.path.abspath(os.path.expanduser(given or DEFAULT_PATH))


def _typed(table: Mapping[str, Any], where: str, errors: list[str]) -> dict[str, Any]:
    """Given one TOML table, return its values typed by the options table; add an error with
    its path for each key that is unknown or does not fit."""
    values: dict[str, Any] = {}
    for key, raw in table.items():
        path = f"{where}.{key}"
        if key in TARGET_KEYS:
            if not isinstance(raw, str) or not raw:
                errors.append(f"{path}: expected a string")
            elif "\x00" in raw:
                errors.append(f"{path}: may not contain a NUL character")
            elif key == "what" and raw.lower() not in WHATS and raw != "binlog":
                errors.append(f"{path}: expected one of {', '.join(TYPED)}")
            elif key == "to" and not looks_like_url(raw):
                errors.append(f"{path}: expected a URL such as file:///var/backups or s3://bucket")
            else:
                values[key] = raw
            continue
        opt = OPTION_KEYS.get(key)
        if opt is None:
            near = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            errors.append(f"{path}: unknown option{hint}")
            continue
        try:
            values[key] = options.coerce(opt, raw)
        except UsageError as exc:
            errors.append(f"{path}: {str(exc).removeprefix(f'{opt.flag} {raw!r}: ')}")
    return values


def _with_path(target: TargetURL, path: str) -> TargetURL:
    """Given a target and a `path` key, return the target with PATH under its own path, as the
    command line's PATH goes under WHERE (relative to the login's home on FTP and SSH)."""
    if any(seg == ".." for seg in path.split("/")):
        raise UsageError(f"the path {path!r} may not contain '..' segments")
    if target.kind == "local":
        return replace(target, path=os.path.normpath(os.path.join(target.path, path.lstrip("/"))))
    if target.kind in ("s3", "s3multi"):
        return replace(target, path="/".join(p for p in (target.path, path.strip("/")) if p))
    if path.startswith("/") or not target.path:
        return replace(target, path=path)
    return replace(target, path=target.path.rstrip("/") + "/" + path)


def _job(values: dict[str, Any], where: str, errors: list[str]) -> ConfigJob | None:
    missing = [k for k in ("what", "to") if k not in values]
    for key in missing:
        errors.append(f"{where}.{key}: missing (every job needs `what` and `to`)")
    if missing:
        return None
    rest = {k: v for k, v in values.items() if k not in TARGET_KEYS}
    try:
        job: ConfigJob
        if values["what"] == "binlog":  # what = "binlog": `tiffin binlog` (SPEC §6)
            job = jobargs.binlog_job([values["to"]], rest)
        elif "follow" in values or "max_lag" in values:
            raise UsageError('follow and max_lag are for binlog jobs (what = "binlog")')
        else:
            job = jobargs.backup_job(values["what"], [values["to"]], rest)
        if values.get("path"):
            job = replace(job, target=_with_path(job.target, values["path"]))
    except UsageError as exc:
        errors.append(f"{where}: {exc}")
        return None
    return job


def parse(text: str, path: str, overrides: Mapping[str, Any] | None = None) -> dict[str, ConfigJob]:
    """Given a config file's TEXT (read from PATH) and command-line values that replace every
    job's own, return its jobs by name, in the file's order: a BinlogJob for what = "binlog",
    a BackupJob for every other. Raise ConfigError listing every error, each with its path
    (jobs.sql.keep_daily: expected a whole number)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    except RecursionError:  # tomllib parses nested arrays and tables by recursion
        raise ConfigError(path, ["not valid TOML: its arrays or tables nest too deep"]) from None
    errors: list[str] = []
    for key in data:
        if key not in ("defaults", "jobs"):
            errors.append(f"{key}: unknown table (use [defaults] and [jobs.NAME])")
    defaults_table = data.get("defaults", {})
    jobs_table = data.get("jobs", {})
    defaults: dict[str, Any] = {}
    if isinstance(defaults_table, dict):
        defaults = _typed(defaults_table, "defaults", errors)
    else:
        errors.append("defaults: expected a table ([defaults])")
    if not isinstance(jobs_table, dict) or not jobs_table:
        errors.append("jobs: no job: add a [jobs.NAME] table with `what` and `to`")
        jobs_table = {}
    jobs: dict[str, ConfigJob] = {}
    for name, table in jobs_table.items():
        where = f"jobs.{name}"
        if not _JOB_NAME.match(name):
            errors.append(f"{where}: a job's name may hold only letters, digits, '.', '_', '-'")
        if not isinstance(table, dict):
            errors.append(f"{where}: expected a table ([jobs.{name}])")
            continue
        before = len(errors)
        values = {**defaults, **_typed(table, where, errors), **(overrides or {})}
        values["job_name"] = name  # the metrics' `job` label (SPEC §7)
        if len(errors) == before:
            job = _job(values, where, errors)
            if job is not None:
                jobs[name] = job
    if errors:
        raise ConfigError(path, errors)
    return jobs


def load(path: str, overrides: Mapping[str, Any] | None = None) -> dict[str, ConfigJob]:
    """Given a config file's path, return its jobs by name (see parse). Raise UsageError if it
    cannot be read, ConfigError if it is malformed."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(TEXT_MAX + 1)
    except FileNotFoundError:
        raise UsageError(
            f"there is no config file {path}: write one with [jobs.NAME] tables, or give --config"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the config file {path}: {exc}") from None
    if len(text) > TEXT_MAX:
        raise UsageError(
            f"the config file {path} is over {TEXT_MAX >> 20} MiB: is it the right file?"
        )
    return parse(text, path, overrides)


def select(jobs: Mapping[str, ConfigJob], names: Iterable[str]) -> list[tuple[str, ConfigJob]]:
    """Given a config's jobs and the names asked for (none: all), return them in order. Raise
    UsageError naming every unknown one."""
    wanted = list(dict.fromkeys(names)) or list(jobs)
    unknown = [n for n in wanted if n not in jobs]
    if unknown:
        raise UsageError(
            f"no job named {', '.join(unknown)} in the config: it has {', '.join(jobs) or 'none'}"
        )
    return [(n, jobs[n]) for n in wanted]


def load_env_files(paths: Iterable[str]) -> None:
    """Given --env-file paths, load their KEY=VALUE lines into the environment (blank lines and
    # comments skipped). Raise UsageError if one cannot be read or is malformed."""
    for path in paths:
        full = os.path.expanduser(path)
        try:
            with open(full, encoding="utf-8", newline="") as f:
                # Lines end at "\n" (or "\r\n") only: a value keeps any \x0c, \x85, U+2028.
                text = f.read(TEXT_MAX + 1)
                lines = [ln.removesuffix("\r") for ln in text.split("\n")]
        except OSError as exc:
            raise UsageError(f"cannot read --env-file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"--env-file {path} is not UTF-8 text") from None
        if len(text) > TEXT_MAX:
            raise UsageError(
                f"--env-file {path} is over {TEXT_MAX >> 20} MiB: is it the right file?"
            )
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition("=")
            key = key.strip().removeprefix("export ").strip()
            if "\x00" in line:
                raise UsageError(f"--env-file {path}, line {number}: holds a NUL byte (not text)")
            if not sep or not _ENV_KEY.match(key):
                # The line itself may be a secret: only its number is shown.
                raise UsageError(f"--env-file {path}, line {number}: expected KEY=VALUE")
            os.environ[key] = value

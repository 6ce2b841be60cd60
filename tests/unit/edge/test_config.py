"""TOML jobs: [defaults] and [jobs.NAME] -> BackupJobs, every error at once with its path."""

from __future__ import annotations

import pytest

from tiffin import config
from tiffin.errors import UsageError
from tiffin.job import BinlogJob

GOOD = """
[defaults]
email = ["cook@noodles.example"]
keep_daily = 7
label = "ramen"
to = "file:///var/backups"

[jobs.sql]
what = "mysql"
to = "ftp://ramenbackups@ftp.example:2121/"
path = "sql"
database = ["menu", "orders"]
consistency = "lock"
keep_daily = 14

[jobs.files]
what = "data"
dir = "/srv/data"
path = "files"
exclude = "*.tmp"
chunk_size = "64M"
min_ratio = 0.25
"""


def test_jobs_take_defaults_and_their_own_values():
    jobs = config.parse(GOOD, "tiffin.toml")
    assert list(jobs) == ["sql", "files"]
    sql, files = jobs["sql"], jobs["files"]
    assert sql.source.what == "mysql" and sql.source.databases == ("menu", "orders")
    assert sql.source.consistency == "lock"
    assert sql.target.redacted() == "ftp://ramenbackups@ftp.example:2121/sql"
    assert sql.retention.daily == 14 and files.retention.daily == 7
    assert sql.emails == files.emails == ("cook@noodles.example",)
    assert sql.label == files.label == "ramen"
    assert files.target.kind == "local" and files.target.path == "/var/backups/files"
    assert files.source.dir == "/srv/data" and files.source.excludes == ("*.tmp",)
    assert files.target_options.chunk_size == 64 << 20 and files.min_ratio == 0.25


def test_overrides_from_the_command_line_apply_to_every_job():
    jobs = config.parse(GOOD, "tiffin.toml", {"quiet": True})
    assert all(job.quiet for job in jobs.values())


def test_every_error_is_reported_at_once_with_its_path():
    text = """
[defaults]
keep_dayly = 3

[jobs.sql]
what = "mysql"
to = "ftp://u@h/"
keep_daily = "seven"
port = 3306.5
email = 5

[jobs.files]
what = "tape"
to = "/not/a/url"
replica = "yes"

[jobs.nothing]
dir = "/x"

[other]
a = 1
"""
    with pytest.raises(config.ConfigError) as info:
        config.parse(text, "/etc/t.toml")
    errors = info.value.errors
    assert errors == [
        "other: unknown table (use [defaults] and [jobs.NAME])",
        "defaults.keep_dayly: unknown option (did you mean keep_daily?)",
        "jobs.sql.keep_daily: expected a whole number",
        "jobs.sql.port: expected a whole number",
        "jobs.sql.email: expected a string or a list of strings",
        "jobs.files.what: expected one of mysql, pgsql, data, sqlite",
        "jobs.files.to: expected a URL such as file:///var/backups or s3://bucket",
        "jobs.files.replica: expected true or false",
        "jobs.nothing.what: missing (every job needs `what` and `to`)",
        "jobs.nothing.to: missing (every job needs `what` and `to`)",
    ]
    assert str(info.value).startswith("/etc/t.toml has 10 errors:\n  other: unknown table")
    assert isinstance(info.value, UsageError)


def test_errors_found_when_a_job_is_built_name_the_job():
    text = """
[jobs.a]
what = "sqlite"
to = "file:///b"

[jobs.b]
what = "data"
to = "ssh://u:pw@h/x"

[jobs.c]
what = "data"
to = "file:///b"
compress_level = 12
"""
    with pytest.raises(config.ConfigError) as info:
        config.parse(text, "t.toml")
    assert [e.split(":", 1)[0] for e in info.value.errors] == ["jobs.a", "jobs.b", "jobs.c"]
    assert "--file" in info.value.errors[0] and "SSH takes no password" in info.value.errors[1]


def test_bad_toml_and_empty_files_are_reported():
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.parse("[jobs.a\nwhat=", "t.toml")
    with pytest.raises(config.ConfigError, match="no job"):
        config.parse("[defaults]\nlabel = 'x'\n", "t.toml")


def test_job_names_are_plain_words():
    with pytest.raises(config.ConfigError, match=r"jobs\.a b: a job's name"):
        config.parse('[jobs."a b"]\nwhat = "data"\nto = "file:///b"\n', "t.toml")


def test_select_keeps_order_and_names_every_unknown_job():
    jobs = config.parse(GOOD, "t.toml")
    assert [n for n, _ in config.select(jobs, [])] == ["sql", "files"]
    assert [n for n, _ in config.select(jobs, ["files", "sql", "files"])] == ["files", "sql"]
    with pytest.raises(
        UsageError, match="no job named nope, nada in the config: it has sql, files"
    ):
        config.select(jobs, ["nope", "sql", "nada"])


@pytest.mark.parametrize(
    ("to", "path", "expected"),
    [
        ("ftp://u@h/", "sql", "ftp://u@h/sql"),
        ("ftp://u@h", "sql", "ftp://u@h/~/sql"),
        ("ftp://u@h/~/base", "sql", "ftp://u@h/~/base/sql"),
        ("sftp://u@h/srv", "/abs", "sftp://u@h/abs"),
        ("s3://bucket/pre", "/sub/", "s3://bucket/pre/sub"),
        ("file:///b", "/x/y", "file:///b/x/y"),
    ],
)
def test_path_goes_under_the_target_as_on_the_command_line(to, path, expected):
    text = f'[jobs.a]\nwhat = "data"\nto = "{to}"\npath = "{path}"\n'
    assert config.parse(text, "t.toml")["a"].target.redacted() == expected


def test_path_may_not_climb_out():
    with pytest.raises(config.ConfigError, match=r"jobs\.a: .*'\.\.'"):
        config.parse('[jobs.a]\nwhat = "data"\nto = "file:///b"\npath = "../x"\n', "t.toml")


@pytest.mark.parametrize("written", ["0o640", "640", "416"])
def test_a_toml_integer_mode_is_refused_not_misread(written):
    """0o640, 416 and 640 are integers TOML cannot tell apart from what the user meant."""
    text = f'[jobs.a]\nwhat = "data"\nto = "file:///b"\nmode = {written}\n'
    with pytest.raises(UsageError, match='quoted string of octal digits, like "0640"'):
        config.parse(text, "/etc/t.toml")
    assert (
        config.parse(text.replace(f"= {written}", '= "0640"'), "/etc/t.toml")[
            "a"
        ].target_options.mode
        == 0o640
    )


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("0777", "no one but the owner may write"),
        ("0660", "no one but the owner may write"),
        ("0602", "no one but the owner may write"),
        ("4700", "no setuid, setgid or sticky bit"),
        ("0", "the owner must read and write"),
        ("0400", "the owner must read and write"),
    ],
)
def test_a_mode_that_lets_others_write_or_the_owner_not_is_refused(mode, said):
    """A backup others may write can be swapped for a hostile dump; one its owner cannot
    read or write cannot be verified or pruned."""
    text = f'[jobs.a]\nwhat = "data"\nto = "file:///b"\nmode = "{mode}"\n'
    with pytest.raises(UsageError, match=said):
        config.parse(text, "/etc/t.toml")


@pytest.mark.parametrize("key", ["debug", "json", "all", "dry_run", "list", "systemd"])
def test_the_command_lines_own_flags_are_no_config_keys(key: str) -> None:
    text = f'[jobs.x]\nwhat = "data"\nto = "file:///tmp/b"\n{key} = true\n'
    with pytest.raises(UsageError, match=rf"jobs\.x\.{key}: unknown option"):
        config.parse(text, "t.toml")


def test_each_default_is_the_jobs_own_and_help_shows_it() -> None:
    from tiffin import options
    from tiffin.job import BackupJob, SourceSpec, TargetOptions

    job = config.parse('[jobs.x]\nwhat = "data"\nto = "file:///tmp/b"\n', "t.toml")["x"]
    assert job.min_ratio == BackupJob.min_ratio == options.default("min_ratio")
    assert job.compress == options.default("compress")
    assert job.source.dir == SourceSpec.dir and job.source.consistency == SourceSpec.consistency
    assert job.target_options == TargetOptions()
    for opt in options.OPTIONS:
        if opt.default not in (None, False):
            assert "(default" in opt.full_help and "default" not in opt.help, opt.flag


def test_binlog_jobs_are_jobs_of_the_config_in_its_order_and_found_by_name():
    text = GOOD.replace(
        "[jobs.files]", '[jobs.logs]\nwhat = "binlog"\nfollow = true\nmax_lag = 30\n\n[jobs.files]'
    )
    jobs = config.parse(text, "t.toml")
    assert list(jobs) == ["sql", "logs", "files"]
    logs = jobs["logs"]
    assert isinstance(logs, BinlogJob) and logs.follow and logs.max_lag == 30
    assert logs.label == "ramen" and logs.target.path == "/var/backups"
    assert [n for n, _ in config.select(jobs, ["logs"])] == ["logs"]

"""Cron times and tiffin's block in a crontab: pure functions."""

from __future__ import annotations

import pytest

from tiffin.commands import cron
from tiffin.errors import UsageError

USER_TAB = (
    "# my own jobs\n"
    "MAILTO=me@example.org\n"
    "SHELL=/bin/bash\n"
    "\n"
    "*/5 * * * * /usr/local/bin/poll   # every five minutes\n"
    'MAILTO=""\n'
    "0 1 * * * echo 100\\% done"  # no line end, and an escaped %
)


def test_random_time_is_a_daily_time_within_range():
    seen = set()
    for _ in range(2000):
        minute, hour, *rest = cron.random_time().split()
        assert rest == ["*", "*", "*"]
        assert 0 <= int(minute) <= 59 and 0 <= int(hour) <= 23
        seen.add((int(minute), int(hour)))
    assert len(seen) > 500  # spread, not one fixed time
    assert {m for m, _ in seen} == set(range(60)) and {h for _, h in seen} == set(range(24))


@pytest.mark.parametrize(
    ("at", "expr"),
    [
        ("03:30", "30 3 * * *"),
        ("3:05", "5 3 * * *"),
        ("00:00", "0 0 * * *"),
        ("23:59", "59 23 * * *"),
    ],
)
def test_at_gives_a_daily_cron_time(at, expr):
    assert cron.at_time(at) == expr


@pytest.mark.parametrize("at", ["24:00", "12:60", "3", "3:5", "noon", "-1:00", "12:00:00", ""])
def test_at_refuses_what_is_no_time_of_day(at):
    with pytest.raises(UsageError, match="--at"):
        cron.at_time(at)


@pytest.mark.parametrize(
    "expr",
    [
        "30 3 * * *",
        "*/15 * * * *",
        "0 3 * * mon-fri",
        "0 3 * * MON,wed,5",
        "0 3 1,15 * *",
        "0 0 1 jan-mar *",
        "0-30/10 2-4 * * 0,7",
        "  5   4  *  *  sun ",
        "@daily",
        "@Weekly",
        "@reboot",
    ],
)
def test_valid_cron_times_pass(expr):
    assert cron.check_cron(expr) == (
        expr.split()[0].lower() if "@" in expr else " ".join(expr.split())
    )


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("* * * *", "five fields"),
        ("* * * * * *", "five fields"),
        ("60 * * * *", "minute '60'"),
        ("0 24 * * *", "hour '24'"),
        ("0 0 0 * *", "day of month '0'"),
        ("0 0 * 13 *", "month '13'"),
        ("0 0 * * 8", "day of week '8'"),
        ("*/0 * * * *", "step '0'"),
        ("5-1 * * * *", "backwards"),
        ("0 3 * * funday", "day of week 'funday'"),
        ("3/5 * * * *", "needs * or a range"),
        ("0 3 * * mon-", "day of week ''"),
        ("@sometimes", "five fields"),
        ("0 3 * * *; rm -rf ~", "five fields"),
    ],
)
def test_bad_cron_times_are_refused_naming_the_field(expr, why):
    with pytest.raises(UsageError, match="--cron") as info:
        cron.check_cron(expr)
    assert why in str(info.value)


def test_when_takes_at_or_cron_not_both():
    assert cron.when(None, None) is None
    assert cron.when("03:30", None) == "30 3 * * *"
    assert cron.when(None, "0 4 * * 1") == "0 4 * * 1"
    with pytest.raises(UsageError, match="not both"):
        cron.when("03:30", "0 4 * * 1")


@pytest.mark.parametrize(
    ("expr", "calendar"),
    [
        ("30 3 * * *", "*-*-* 3:30:00"),
        ("*/15 * * * *", "*-*-* *:0/15:00"),
        ("0 3 * * mon-fri", "Mon,Tue,Wed,Thu,Fri *-*-* 3:0:00"),
        ("0 3 * * 0", "Sun *-*-* 3:0:00"),
        ("0 4 1-5/2 jan,jul *", "*-1,7-1..5/2 4:0:00"),
        ("@daily", "daily"),
        ("@annually", "yearly"),
    ],
)
def test_cron_times_become_systemd_calendars(expr, calendar):
    assert cron.on_calendar(expr) == calendar


@pytest.mark.parametrize("expr", ["@reboot", "0 3 1 * mon"])
def test_what_systemd_cannot_say_is_refused(expr):
    with pytest.raises(UsageError, match="--systemd"):
        cron.on_calendar(expr)


def test_command_text_quotes_and_escapes_cron_percent():
    text = cron.command_text(["/opt/tiffin", "backup", "data", "file:///b k", "--label", "a%b"])
    assert text == "/opt/tiffin backup data 'file:///b k' --label a\\%b"
    with pytest.raises(UsageError, match="line break"):
        cron.command_text(["x", "a\nb"])


def test_split_line_reads_tiffin_lines_only():
    line = cron.job_line("30 3 * * *", "/opt/tiffin backup data file:///b", "0a1b2c3d")
    assert line == "30 3 * * * /opt/tiffin backup data file:///b # tiffin:0a1b2c3d"
    assert cron.split_line(line) == ("0a1b2c3d", "30 3 * * *", "/opt/tiffin backup data file:///b")
    assert cron.split_line("@daily /x # tiffin:ff") == ("ff", "@daily", "/x")
    assert cron.split_line("# 30 3 * * * /x # tiffin:ff") is None
    assert cron.split_line("30 3 * * * /x") is None


def test_a_crontab_without_block_renders_unchanged():
    for text in ("", USER_TAB, USER_TAB + "\n", "MAILTO=x\r\n0 1 * * * y\r\n"):
        assert cron.render_crontab(cron.parse_crontab(text)) == text


def test_block_goes_last_under_its_own_mailto_and_user_lines_stay_byte_for_byte():
    tab = cron.parse_crontab(USER_TAB).with_job("aa11", "1 2 * * * /t # tiffin:aa11")
    text = cron.render_crontab(tab)
    assert text.startswith(USER_TAB + "\n")  # the missing last line end is added, once
    assert text[len(USER_TAB) + 1 :] == (
        f'{cron.BEGIN}\nMAILTO=""\n1 2 * * * /t # tiffin:aa11\n{cron.END}\n'
    )
    again = cron.parse_crontab(text)
    assert again.jobs() == [("aa11", "1 2 * * *", "/t")]
    assert cron.render_crontab(again) == text


def test_the_same_job_replaces_its_line_others_are_kept():
    tab = cron.parse_crontab(USER_TAB + "\n")
    tab = tab.with_job("aa11", "1 2 * * * /a # tiffin:aa11")
    tab = tab.with_job("bb22", "3 4 * * * /b # tiffin:bb22")
    tab = cron.parse_crontab(cron.render_crontab(tab)).with_job(
        "aa11", "5 6 * * * /a2 # tiffin:aa11"
    )
    assert tab.jobs() == [("aa11", "5 6 * * *", "/a2"), ("bb22", "3 4 * * *", "/b")]


def test_removing_the_last_job_removes_the_block_and_its_mailto():
    base = USER_TAB + "\n"
    tab = cron.parse_crontab(base).with_job("aa11", "1 2 * * * /a # tiffin:aa11")
    tab = tab.with_job("bb22", "3 4 * * * /b # tiffin:bb22")
    text = cron.render_crontab(tab)
    one = cron.render_crontab(cron.parse_crontab(text).without({"aa11"}))
    assert "tiffin:aa11" not in one and "tiffin:bb22" in one and one.count('MAILTO=""') == 2
    assert cron.render_crontab(cron.parse_crontab(one).without({"bb22"})) == base


def test_user_lines_added_after_the_block_move_above_it():
    tab = cron.parse_crontab("").with_job("aa11", "1 2 * * * /a # tiffin:aa11")
    text = cron.render_crontab(tab) + "7 7 * * * /mine\n"
    moved = cron.render_crontab(cron.parse_crontab(text))
    assert moved.startswith("7 7 * * * /mine\n" + cron.BEGIN)


@pytest.mark.parametrize(
    "text",
    [
        f"{cron.BEGIN}\n1 2 * * * /a # tiffin:aa\n",
        f"{cron.END}\n",
        f"{cron.BEGIN}\n{cron.END}\n{cron.BEGIN}\n{cron.END}\n",
    ],
)
def test_broken_markers_are_refused_before_anything_is_written(text):
    with pytest.raises(UsageError, match="crontab"):
        cron.parse_crontab(text)

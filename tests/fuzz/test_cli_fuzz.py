"""Random command lines, WHERE strings, URLs and TOML configs fed to tiffin.cli.main in this
process (see sandbox.py: nothing reachable, nothing outside a temp folder writable).

Whatever comes in: never a traceback nor an unexpected error; exit 2 is one sentence
(`tiffin: …`; a config lists each of its errors under it) found before anything was
contacted; no file outside the temp folder is touched; nothing beyond the loopback is
looked up or reached."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.tried import tried
from tests.fuzz.sandbox import Outcome, Sandbox
from tests.servers.ports import free_port
from tiffin import cli
from tiffin.config import KEYS
from tiffin.options import OPTIONS
from tiffin.sources import WHATS
from tiffin.targets import HOWS, SCHEMES

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PORT = free_port()  # nobody listens there
LOOPBACK = ["127.0.0.1", "localhost", "::1", "[::1]", f"127.0.0.1:{PORT}"]
# Text as a shell passes it (no NUL; bytes that are not UTF-8 arrive as U+DC80-U+DCFF, the
# only lone surrogates argv can hold) that, as a folder, lies in the sandbox: no absolute
# path, no way up. (A user may well name a folder above: the sandbox would refuse to write.)
ARG_CHARS = st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"])
TEXT = st.text(ARG_CHARS | st.sampled_from(["\udc80", "\udcff"]), max_size=24).filter(
    lambda s: not s.startswith("/") and ".." not in s
)
SAFE_VALUES = {  # options whose value names a host or a URL: loopback only
    "--host": st.sampled_from(LOOPBACK),
    "--socket": st.sampled_from(["s.sock", "no/such.sock"]),
    "--endpoint-url": st.sampled_from([f"http://127.0.0.1:{PORT}", "http://[::1]:9", "nope"]),
    "--ping-url": st.sampled_from([f"http://127.0.0.1:{PORT}/p", "ftp://127.0.0.1/x", "x"]),
}
# Files that are not what an option expects: binary, NUL-separated, a folder, a device.
ODD_FILES = ["/proc/self/environ", "/proc/self/cmdline", "/dev/null", "data", "data/f.txt"]
FLAGS = {o.flag: o for o in OPTIONS}
EXTRA_FLAGS = ["--nope", "-x", "--"]  # not in the options table


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "data").mkdir()
    (root / "data" / "f.txt").write_text("fuzz\n")
    yield Sandbox(root, PORT)


def value_for(flag: str) -> st.SearchStrategy[str]:
    if flag in SAFE_VALUES:
        return SAFE_VALUES[flag]
    opt = FLAGS.get(flag)
    if opt is not None and opt.metavar == "FILE" and flag != "--output":  # files read
        return st.sampled_from(ODD_FILES) | TEXT
    if opt is not None and opt.choices:
        return st.sampled_from(opt.choices) | TEXT
    if opt is not None and opt.kind in ("int", "float", "size", "mode"):
        return st.sampled_from(["0", "1", "-1", "7", "1.5", "4G", "1KiB", "0644", "x", ""]) | TEXT
    return TEXT


@st.composite
def options(draw: st.DrawFn) -> list[str]:
    argv: list[str] = []
    for flag in draw(st.lists(st.sampled_from([*FLAGS, *EXTRA_FLAGS]), max_size=5)):
        argv.append(flag)
        opt = FLAGS.get(flag)
        if opt is not None and opt.kind != "flag":
            argv.append(draw(value_for(flag)))
    return argv


def wheres(root: Path) -> st.SearchStrategy[str]:
    user = st.sampled_from(["u", "ramen", "", "a b", "u:pw", "ü"]) | TEXT
    host = st.sampled_from([*LOOPBACK, "", "bad host", "[::1", "h:99999"]) | TEXT
    port = st.sampled_from(["", f":{PORT}", ":0", ":65536", ":x", ":"])
    composed = st.builds(lambda u, h, p: f"{u}@{h}{p}", user, host, port)
    # data/f.txt: a file where the local target folder should be
    places = [str(root / "t"), "t", "a/../t", "bucket", "b/c", str(root / "data/f.txt")]
    return composed | st.sampled_from(places) | TEXT


def urls(root: Path) -> st.SearchStrategy[str]:
    """URLs of every scheme; a file:// URL names a folder in ROOT (or none at all)."""
    scheme = st.sampled_from([s for s in SCHEMES if s != "file"] + ["http", "S3", ""]) | TEXT
    netloc = st.sampled_from(["", "u@127.0.0.1", f"u:p@127.0.0.1:{PORT}", "b", "[::1]", "u@"])
    path = st.sampled_from(["", "/", "/~/x", "/a/../b", "/%2e%2e", "/%00", "/x y"]) | TEXT
    built = st.builds(lambda s, n, p: f"{s}://{n}{p}", scheme, netloc | TEXT, path)
    built = built.filter(lambda u: not u.lower().startswith("file:"))
    local = st.builds(
        lambda h, p: f"file://{h}{root}/{p}", st.sampled_from(["", "localhost"]), path
    )
    return (
        built
        | local
        | st.sampled_from(["file://", "file:", "file:/x"])
        | TEXT.map(lambda t: t + "://" + t)
    )


def check(outcome: Outcome, argv: list[str]) -> None:
    """The properties every run keeps, whatever ARGV holds."""
    shown = f"argv={argv!r}\nexit {outcome.code}\nstdout:\n{outcome.out}\nstderr:\n{outcome.err}"
    assert outcome.code in (0, 1, 2), shown
    assert "unexpected error" not in outcome.err, shown
    if "--debug" not in argv:
        assert "Traceback" not in outcome.err, shown
    assert outcome.violations == [], f"{outcome.violations}\n{shown}"
    if outcome.code == 2:
        lines = outcome.err.strip("\n").split("\n")
        if "--debug" in argv:  # the traceback it asks for, then the sentence
            lines = lines[next((i for i, x in enumerate(lines) if x.startswith("tiffin: ")), 0) :]
        assert lines and lines[0].startswith("tiffin: "), shown
        quoted = any("\n" in a for a in argv)  # an argument's own newline, quoted
        assert len(lines) == 1 or quoted or argv[:1] in (["run"], ["schedule"]), shown
        assert outcome.contacts == [], f"exit 2 after contacting {outcome.contacts}\n{shown}"
    if outcome.code == 1:
        assert outcome.err.strip(), shown


@tried(
    "fuzz",
    "Random command lines",
    "hypothesis draws (120 examples; FUZZ_EXAMPLES=N for more) a command (or an unknown "
    "one), positionals from the words tiffin knows plus random text (a file where the "
    "target folder should be too), and random options with values typed or not (a file "
    "option may name /proc/self/environ, a folder or a device)",
    "never a traceback or an unexpected error; exit 2 is one `tiffin: …` sentence with "
    "nothing contacted; nothing written outside the temp folder; no network beyond loopback",
)
def test_random_command_lines(box: Sandbox) -> None:
    words = [*cli.COMMANDS, *WHATS, *HOWS, "latest", "a/../b", "-", "--help", "--version"]
    positional = st.sampled_from(words) | wheres(box.root) | urls(box.root) | TEXT

    @FUZZ
    @given(
        st.sampled_from([*cli.COMMANDS, "frobnicate"]), st.lists(positional, max_size=5), options()
    )
    def run(command: str, args: list[str], opts: list[str]) -> None:
        argv = [command, *args, *opts]
        check(box.run(argv), argv)

    run()


@tried(
    "fuzz",
    "Random WHERE strings",
    "`tiffin backup data HOW WHERE [PATH]` and `tiffin restore HOW WHERE latest` with every "
    "HOW and a WHERE composed of random user, password, host and port parts, or random text",
    "as for random command lines; a malformed host is exit 2; a lookup beyond the loopback "
    "is refused by the sandbox (as offline) and ends in exit 1",
)
def test_random_where_strings(box: Sandbox) -> None:
    @FUZZ
    @given(
        st.sampled_from([*HOWS, "tape"]),
        wheres(box.root),
        st.lists(TEXT, max_size=1),
        st.booleans(),
    )
    def run(how: str, where: str, path: list[str], restore: bool) -> None:
        data = ["--dir", str(box.root / "data"), "--timeout", "2"]
        argv = ["backup", "data", how, where, *path, *data]
        if restore:
            argv = ["restore", how, where, *path, "latest", "--output", "out", "--timeout", "2"]
        check(box.run(argv), argv)

    run()


@tried(
    "fuzz",
    "Random URLs",
    "`tiffin backup data URL`, `tiffin list URL` and `tiffin restore URL NAME` with URLs of "
    "every scheme (and others), random user, host, port and path parts, %-escapes",
    "as for random command lines",
)
def test_random_urls(box: Sandbox) -> None:
    @FUZZ
    @given(urls(box.root), st.sampled_from(["backup", "list", "restore"]))
    def run(url: str, command: str) -> None:
        argv = {
            "backup": ["backup", "data", url, "--dir", str(box.root / "data")],
            "list": ["list", url],
            "restore": ["restore", url, "latest", "--output", "-"],
        }[command] + ["--timeout", "2"]
        check(box.run(argv), argv)

    run()


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return (
        '"'
        + "".join(
            c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in str(value)
        )
        + '"'
    )


def toml_text(tables: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{toml_value(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


@st.composite
def configs(draw: st.DrawFn, root: Path) -> str:
    scalar = st.booleans() | st.integers(-3, 10) | st.floats(allow_nan=False) | TEXT
    special = {
        "to": st.sampled_from(
            [
                f"file://{root}/t",
                f"ftp://u:p@127.0.0.1:{PORT}/x",
                "s3://b/x",
                f"sftp://u@127.0.0.1:{PORT}/x",
                "nope",
                "file:///",
                f"file://{root}/t\x00x",
                f"file://{root}/data/f.txt",
            ]
        ),
        "what": st.sampled_from([*WHATS, "oracle"]),
        "host": st.sampled_from(LOOPBACK),
        "dir": st.sampled_from(["data", "missing", str(root / "data"), "da\x00ta"]),
        "path": st.sampled_from(["sub", "a\x00b", "data/f.txt"]) | TEXT,
        "ping_url": SAFE_VALUES["--ping-url"],
        "endpoint_url": SAFE_VALUES["--endpoint-url"],
        "socket": SAFE_VALUES["--socket"],
    }

    def table() -> dict[str, Any]:
        keys = draw(st.lists(st.sampled_from([*KEYS, "nonsense"]) | TEXT, max_size=6))
        return {k: draw(special.get(k, scalar | st.lists(scalar, max_size=2))) for k in keys}

    names = draw(st.lists(st.sampled_from(["web", "db", "a b", ""]) | TEXT, max_size=2))
    tables = {f"jobs.{toml_value(n)}": table() for n in names}
    if draw(st.booleans()):
        tables = {"defaults": table(), **tables}
    return draw(st.sampled_from([toml_text(tables), toml_text(tables)[:-7]]) | TEXT)


@tried(
    "fuzz",
    "Random TOML configs",
    "`tiffin run --config FILE` with FILE drawn as [defaults] and [jobs.NAME] tables of known "
    "and unknown keys holding values of every TOML type (a NUL in `dir`, `to` or `path`), or "
    "cut short, or random text",
    "as for random command lines; exit 2 names each error of the file under one first line",
)
def test_random_toml_configs(box: Sandbox) -> None:
    @FUZZ
    @given(configs(box.root), st.lists(st.sampled_from(["web", "db", "x"]), max_size=1))
    def run(text: str, jobs: list[str]) -> None:
        path = box.root / "fuzz.toml"
        path.write_text(text, errors="surrogatepass")
        argv = ["run", "--config", str(path), *jobs]
        check(box.run(argv), argv)

    run()

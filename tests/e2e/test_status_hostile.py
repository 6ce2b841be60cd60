"""status when things go wrong for real: a target nobody answers, a page that cannot be
written, backup names planted at a target that are markup and terminal escapes."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from tests.e2e.helpers import tiffin
from tests.e2e.test_status import backup, fleet, status
from tests.faults.tried import tried
from tests.servers.env import tiffin_env

__all__ = ["fleet"]  # the module's fixture, shared


@tried(
    "fault",
    "status: a target that cannot be reached",
    "a config job points at an FTP port nobody listens on, beside jobs on local folders",
    "that job is FAILED with the reason (connection refused), the other jobs are still "
    "judged, exit 1, no traceback",
)
def test_an_unreachable_target_is_its_jobs_failed_verdict_not_a_crash(
    fleet: dict[str, object],
) -> None:
    out = status(fleet, "good", "offline", expect=1)
    assert out.splitlines()[1].split()[:2] == ["good", "OK"]
    assert re.search(r"FAILED offline: ftp://u@127\.0\.0\.1:\d+/b cannot be read: .*refused", out)
    assert "chowmein" not in out  # the target's password is never shown


@tried(
    "fault",
    "status --html: the page cannot be written",
    "--html names a file in a folder that does not exist, and a folder itself",
    "exit 1 with one sentence naming the page; the table is still printed; nothing is left "
    "beside the folder",
)
def test_a_page_that_cannot_be_written_is_exit_1(fleet: dict[str, object], tmp_path: Path) -> None:
    for where in (tmp_path / "no" / "page.html", tmp_path):
        out = tiffin(
            ["status", "--config", str(fleet["config"]), "good", "--html", str(where)],
            fleet["env"],  # type: ignore[arg-type]
            expect=1,
        )
        assert out.stdout.splitlines()[1].split()[:2] == ["good", "OK"]
        assert out.stderr.startswith(f"tiffin: the page {where} cannot be written: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs


HOSTILE = [
    "<script>alert(1)<",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "a&amp;b<!--",
    "<table><tr><td><iframe src=https:x>",  # a file name holds no '/': no closing tag
    "\x1b[31mred\x1b[0m",
]


@tried(
    "hostile",
    "status: backup names and labels that are markup or escape sequences",
    f"{len(HOSTILE)} backups planted at a local target (with manifests that name them) whose "
    "labels are HTML tags, attribute breakers, comments and terminal escapes; status reads the "
    "target as a command-line target, with --html",
    "the page holds only the page's own tags (no script, img, iframe, no on* attribute), one "
    "row per label; the terminal table holds no control character",
)
def test_hostile_names_at_a_target_never_become_markup(tmp_path: Path) -> None:
    env = tiffin_env(tmp_path / "home")
    data, folder = tmp_path / "data", tmp_path / "t"
    data.mkdir()
    real = backup(folder, data, env, "seed")
    manifest = json.loads((folder / f"{real}.manifest.json").read_text())
    for i, label in enumerate(HOSTILE):
        name = real.replace("seed_", f"{label}_").replace(":00_UTC", f":{i:02d}_UTC")
        name = name if name != real else real.replace("seed_", f"{label}_")
        (folder / name).write_bytes((folder / real).read_bytes())
        (folder / f"{name}.manifest.json").write_text(
            json.dumps({**manifest, "name": name, "label": label})
        )
    page = tmp_path / "page.html"
    proc = tiffin(["status", "local", str(folder), "--html", str(page)], env)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", proc.stdout)
    parser = Tags()
    parser.feed(page.read_text())
    assert set(parser.tags) <= PAGE_TAGS, set(parser.tags) - PAGE_TAGS
    assert not [a for a, _ in parser.attrs if a.startswith("on") or a in ("src", "href")]
    assert parser.tags.count("tr") == 1 + len(HOSTILE) + 1  # the head, a row per label


PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "p", "table", "thead", "tbody",
    "tr", "th", "td", "ul", "li", "section", "figure", "figcaption", "svg", "rect", "text",
    "polyline", "circle",
}  # fmt: skip

"""status's page and table made from hostile strings: hypothesis draws any text a target
could hold, and none of it ever becomes markup or a terminal escape."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.faults.tried import tried
from tests.unit.commands.test_status_rules import NOW
from tiffin.catalog.backup import Backup
from tiffin.catalog.drillrecord import Drilled
from tiffin.catalog.watch import FAILED, OK, STALE, JobStatus, Point
from tiffin.commands.status import plain, table
from tiffin.commands.statuspage import page


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "p", "table", "thead", "tbody",
    "tr", "th", "td", "ul", "li", "section", "figure", "figcaption", "svg", "rect", "text",
    "polyline", "circle",
}  # fmt: skip
ATTRS = {
    "lang", "charset", "http-equiv", "content", "name", "class", "data-verdict", "width",
    "height", "viewbox", "role", "aria-label", "x", "y", "fill", "stroke", "text-anchor",
    "points", "stroke-width", "cx", "cy", "r",
}  # fmt: skip
MARKUP = st.sampled_from(["<", ">", "&", '"', "'", "</", "<!--", "-->", "<script>", "]]>", "\x1b["])
HOSTILE = st.lists(
    MARKUP | st.text(st.characters(codec="utf-8"), max_size=6), min_size=1, max_size=8
).map("".join)


@st.composite
def statuses(draw: st.DrawFn) -> list[JobStatus]:
    found = []
    for _ in range(draw(st.integers(1, 4))):
        name, label, job, reason = (draw(HOSTILE) for _ in range(4))
        b = Backup(name, label, "pgsql", NOW - timedelta(days=1), size=draw(st.integers(0, 9**12)))
        drill = Drilled(name, NOW, draw(st.booleans()), draw(HOSTILE))
        pts = tuple(
            Point(
                NOW - timedelta(days=i),
                draw(st.integers(0, 10**9)),
                draw(st.none() | st.floats(0, 1e6)),
            )
            for i in range(draw(st.integers(0, 5)))
        )
        verdict = draw(st.sampled_from([OK, STALE, FAILED, draw(HOSTILE)]))
        found.append(
            JobStatus(
                job,
                draw(HOSTILE),
                label,
                "pgsql",
                verdict,
                (reason,),
                b,
                NOW,
                86400.0,
                b,
                drill,
                None,
                pts,
            )
        )
    return found


@tried(
    "hostile",
    "status page and table: hostile job, backup and label names, reasons",
    "hypothesis draws (100 examples) 1-4 jobs whose names, labels, backup names, verdicts, "
    "drill reasons and reasons are any UTF-8 text mixed with markup (<, >, &, quotes, "
    "comments, <script>, CDATA ends) and terminal escapes, and renders the page and the table",
    "the page parses to the page's own tags and attributes only (no script, no on* handler, "
    "no src or href), one table row and one chart per job; no table line holds a control "
    "character",
)
@settings(max_examples=100, deadline=None)
@given(statuses())
def test_hostile_names_never_produce_tags(found: list[JobStatus]) -> None:
    parser = Tags()
    parser.feed(page(found, NOW).decode("utf-8"))
    parser.close()
    tags = [t for t, _ in parser.tags]
    assert set(tags) <= PAGE_TAGS, set(tags) - PAGE_TAGS
    attrs = {a for _, attrs in parser.tags for a, _ in attrs}
    assert attrs <= ATTRS, attrs - ATTRS
    rows = [t for t, attrs in parser.tags if t == "tr" and ("class", "job") in attrs]
    assert len(rows) == len(found)
    assert tags.count("figure") == len(found)
    for line in table(found):
        assert line.isprintable(), line
    assert all(plain(s.job).isprintable() for s in found)

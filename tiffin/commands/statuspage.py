"""status --html: one self-contained page, the table and, per job, inline SVG charts of its
backups' size and duration over time. No script, no font, no image, no link: nothing is
fetched when it is opened (its Content-Security-Policy forbids it too), so it can be mailed,
served as a file or kept as a record.

Every string that comes from a target (names, labels, reasons) is hostile input: each goes
through html.escape, attributes included, and nothing else is ever written raw.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape

from tiffin import __version__
from tiffin.catalog.watch import FAILED, OK, STALE, JobStatus, Point, span
from tiffin.commands.status import HEAD, cells
from tiffin.engine import safefile
from tiffin.errors import TiffinError, os_error_text

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1c2330;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:0 0 6px}
p.when{color:#5b6472;margin:0 0 16px}
table{border-collapse:collapse;background:#fff;margin-bottom:16px}
th,td{border:1px solid #d6dae0;padding:4px 8px;text-align:left;white-space:nowrap}
th{background:#eef1f5}
td.OK{background:#d9f2de;color:#105c24;font-weight:600}
td.STALE{background:#fff1cc;color:#6b4a00;font-weight:600}
td.FAILED{background:#fbdada;color:#8a1111;font-weight:600}
ul.reasons{margin:0 0 20px;padding-left:20px}
section.charts{display:flex;flex-wrap:wrap;gap:12px}
figure.chart{background:#fff;border:1px solid #d6dae0;margin:0;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}
svg text{font:11px system-ui,sans-serif;fill:#5b6472}
"""
WIDTH, HEIGHT, PAD = 300, 120, 28
CLASSES = {OK: OK, STALE: STALE, FAILED: FAILED}


def write(path: str, statuses: Sequence[JobStatus], now: datetime) -> None:
    """Write the page of STATUSES to PATH atomically (mode 0644: it holds no secret). Raise
    TiffinError naming the page if it cannot be written."""
    try:
        safefile.write_new(os.path.expanduser(path), page(statuses, now), 0o644)
    except OSError as exc:
        raise TiffinError(f"the page {path} cannot be written: {os_error_text(exc)}") from None


def page(statuses: Sequence[JobStatus], now: datetime) -> bytes:
    """Given the jobs' statuses and the time they were read, return the page's bytes."""
    e = escape
    head = "".join(f"<th>{e(h)}</th>" for h in HEAD)
    rows = []
    for s in statuses:
        tds = [f"<td>{e(c)}</td>" for c in cells(s)]
        tds[1] = f'<td class="{CLASSES.get(s.verdict, FAILED)}">{e(s.verdict)}</td>'
        rows.append(f'<tr class="job">{"".join(tds)}</tr>')
    reasons = "".join(
        f"<li>{e(s.verdict)} {e(s.job)}: {e(r)}</li>" for s in statuses for r in s.reasons
    )
    charts = "".join(chart(s) for s in statuses)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>tiffin status</title><style>{STYLE}</style></head><body>"
        "<h1>tiffin status</h1>"
        f'<p class="when">Read from the targets at {now:%Y-%m-%d %H:%M:%S} UTC by tiffin '
        f"{e(__version__)}.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        + (f'<ul class="reasons">{reasons}</ul>' if reasons else "")
        + f'<section class="charts">{charts}</section></body></html>\n'
    ).encode("utf-8", "backslashreplace")


def chart(s: JobStatus) -> str:
    """Given a job's status, return its figure: size and duration of its complete backups."""
    pts = s.history
    sizes = svg("size", pts, lambda p: float(p.size), _bytes)
    times = svg("duration", pts, lambda p: p.seconds, lambda v: span(v))
    return (
        f'<figure class="chart" data-verdict="{escape(s.verdict)}">'
        f"<figcaption>{escape(s.job)}</figcaption>{sizes}{times}</figure>"
    )


def _bytes(v: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if v < 1024 or unit == "TiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return f"{v:.1f} TiB"


def svg(
    title: str,
    pts: Sequence[Point],
    value: Callable[[Point], float | None],
    shown: Callable[[float], str],
) -> str:
    """Return an inline SVG line chart of VALUE over the points' times (oldest first)."""
    known = [(p.created.timestamp(), v, p) for p in pts if (v := value(p)) is not None]
    box = f'<svg width="{WIDTH}" height="{HEIGHT}"'
    box += f' viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
    frame = (
        f'<rect x="{PAD}" y="8" width="{WIDTH - PAD - 8}" height="{HEIGHT - PAD - 8}" '
        'fill="#f5f7fa" stroke="#d6dae0"/>'
        f'<text x="{PAD}" y="{HEIGHT - 4}">{escape(title)}</text>'
    )
    if not known:
        return f'{box}{frame}<text x="{PAD + 8}" y="{HEIGHT // 2}">no data</text></svg>'
    t0, t1 = known[0][0], known[-1][0]
    top = max(v for _, v, _ in known) or 1.0
    inner_w, inner_h = WIDTH - PAD - 16, HEIGHT - PAD - 16

    def xy(t: float, v: float) -> tuple[float, float]:
        x = PAD + 4 + (inner_w * (t - t0) / (t1 - t0) if t1 > t0 else inner_w / 2)
        return x, 12 + inner_h * (1 - v / top)

    coords = [xy(t, v) for t, v, _ in known]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="#2f6fd0">'
        f"<title>{escape(f'{p.created:%Y-%m-%d %H:%M} {shown(v)}')}</title></circle>"
        for (x, y), (_, v, p) in zip(coords, known, strict=True)
    )
    labels = (
        f'<text x="{PAD + 4}" y="22">{escape(shown(top))}</text>'
        f'<text x="{WIDTH - 8}" y="{HEIGHT - 4}" text-anchor="end">'
        f"{escape(f'{known[0][2].created:%m-%d} to {known[-1][2].created:%m-%d}')}</text>"
    )
    path = f'<polyline points="{line}" fill="none" stroke="#2f6fd0" stroke-width="1.5"/>'
    return f"{box}{frame}{path}{dots}{labels}</svg>"

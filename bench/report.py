"""Markdown tables of bench results, with the ratios and the issue's goals."""

from __future__ import annotations

from collections.abc import Sequence

from bench.measure import Result

MB = 1_000_000


def _find(results: Sequence[Result], label: str) -> Result | None:
    return next((r for r in results if r.label == label), None)


def _ratio(a: Result | None, b: Result | None) -> float | None:
    if a is None or b is None or not a.samples or not b.samples:
        return None
    return a.median("wall") / b.median("wall")


def _rss(r: Result) -> str:
    """tiffin's own peak RSS; none for other commands (getrusage would count the bench's)."""
    return f"{r.median('rss_kib') / 1024:.0f}" if r.label.startswith("tiffin") else "-"


def _cell(label: str) -> str:
    return label.replace("|", "\\|")  # a pipe in a label would end its table cell


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def seed_of(label: str) -> str:
    """Given a case label, return the label of the seed pipeline it is compared with."""
    for target in ("sftp", "s3"):
        if label.endswith("→ " + target):
            return "seed: gzip, then " + ("scp" if target == "sftp" else "boto3 upload")
    return "seed: dump | gzip -6 > file"


def backup_table(title: str, results: Sequence[Result]) -> list[str]:
    """Return the lines of one source's table: medians, ratios to the seed and to the floor."""
    floor = _find(results, "floor: dump > /dev/null")
    lines = [
        f"#### {title}",
        "",
        "| case | wall s | x seed | x floor | CPU s | peak RSS MB | temp MB | stored MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        seed = _find(results, seed_of(r.label))
        lines.append(
            f"| {_cell(r.label)} | {r.median('wall'):.2f} | "
            f"{_fmt(_ratio(r, seed)) if not r.label.startswith('floor') else '-'} | "
            f"{_fmt(_ratio(r, floor))} | {r.median('cpu'):.1f} | "
            f"{_rss(r)} | {r.median('temp_bytes') / MB:.0f} | "
            f"{r.median('stored') / MB:.1f} |"
        )
    return lines


ESTIMATE = "tiffin zstd --counts estimate"  # the row counts left to the server's estimates


def goals(results: Sequence[Result]) -> list[tuple[str, float | None, float, bool]]:
    """Return the issue's goals for one source: (goal, measured, limit, met)."""
    seed = _find(results, "seed: dump | gzip -6 > file")
    pigz = _find(results, "dump | pigz -p2 > file")
    zstd = _find(results, "dump | zstd -T0 -3 > file")
    gz_local = _find(results, "tiffin gzip → local")
    zst_local = _find(results, "tiffin zstd → local")
    out: list[tuple[str, float | None, float, bool]] = []

    def add(goal: str, value: float | None, limit: float, low_is_good: bool = True) -> None:
        met = value is not None and (value <= limit if low_is_good else value >= limit)
        out.append((goal, value, limit, met))

    add("tiffin gzip → local ÷ seed (≤ 0.70)", _ratio(gz_local, seed), 0.70)
    add("tiffin gzip → local ÷ pigz -p2 (≤ 1.05)", _ratio(gz_local, pigz), 1.05)
    add("tiffin zstd → local ÷ zstd -T0 -3 (≤ 1.05)", _ratio(zst_local, zstd), 1.05)
    estimate = _find(results, f"{ESTIMATE} → local")
    if estimate is not None:
        add(f"{ESTIMATE} ÷ zstd -T0 -3 (≤ 1.05)", _ratio(estimate, zstd), 1.05)
    tiffins = [r for r in results if r.label.startswith("tiffin")]
    if tiffins:
        rss = max(s.rss_kib for r in tiffins for s in r.samples) / 1024
        temp = max(s.temp_bytes for r in tiffins for s in r.samples) / MB
        add("tiffin peak RSS, MB, worst run (< 200)", rss, 200)
        add("tiffin temp disk, MB, worst run (= 0)", temp, 0)  # see measure.METADATA
    return out


def goal_lines(rows: Sequence[tuple[str, float | None, float, bool]]) -> list[str]:
    lines = ["", "| goal | measured | met |", "|---|---:|:-:|"]
    for goal, value, _, met in rows:
        lines.append(f"| {goal} | {_fmt(value)} | {'yes' if met else 'NO'} |")
    return lines


def leg_table(results: Sequence[Result], size: int) -> list[str]:
    """Return the lines of the upload legs' table: throughput against the standard client."""
    ref = {
        "tiffin → sftp, --compress none": "scp",
        "tiffin → s3, --compress none": "boto3 upload_file",
    }
    lines = [
        f"#### Upload legs: one {size / (1 << 20):.0f} MiB random file",
        "",
        "| leg | wall s | MB/s | x standard client | worst round | CPU s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        base = _find(results, ref.get(r.label, ""))
        share = _ratio(base, r) if base else None
        # Round by round (the cases ran side by side): the goal holds in every one or not.
        worst = (
            min(b.wall / s.wall for b, s in zip(base.samples, r.samples, strict=False))
            if base and r.samples
            else None
        )
        lines.append(
            f"| {r.label} | {r.median('wall'):.2f} | {size / r.median('wall') / MB:.0f} | "
            f"{_fmt(share)} | {_fmt(worst)} | {r.median('cpu'):.1f} | {_rss(r)} |"
        )
    return lines


def restore_table(title: str, results: Sequence[Result]) -> list[str]:
    lines = [
        f"#### Restore: {title}",
        "",
        "| case | wall s | x seed | CPU s | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
    ]
    seed = results[0] if results else None
    for r in results:
        lines.append(
            f"| {_cell(r.label)} | {r.median('wall'):.2f} | {_fmt(_ratio(r, seed))} | "
            f"{r.median('cpu'):.1f} | {_rss(r)} |"
        )
    return lines

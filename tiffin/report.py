"""What a run says: the seed's report line, then where, how long, and warnings."""

from __future__ import annotations

from tiffin.pipeline import BackupResult


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def shrink_warning(result: BackupResult, min_ratio: float) -> str | None:
    """Return the WARNING line when this backup is under MIN_RATIO of the previous one."""
    prev = result.previous_size
    if prev and min_ratio > 0 and result.size < prev * min_ratio:
        return (
            f"WARNING: this backup ({result.size} bytes) is under {min_ratio:g} of the "
            f"previous one of {result.label} ({prev} bytes): check that nothing is missing."
        )
    return None


def success_lines(result: BackupResult, min_ratio: float) -> list[str]:
    """Given a backup's result, return the report's lines (the seed's line first)."""
    secs = max(result.seconds, 0.001)
    lines = [
        f"Backup {result.name} completed. Its (compressed) size is {result.size} bytes.",
        f"Stored at: {result.target}/{result.name}",
        f"Took: {result.seconds:.1f} s ({human(result.size / secs)}/s)",
    ]
    if result.consistency:
        lines.append(f"Consistency: {result.consistency}")
    if result.manifest and result.manifest.encryption:
        lines.append("Encrypted to: " + ", ".join(result.manifest.encryption))
    warn = shrink_warning(result, min_ratio)
    if warn:
        lines.append(warn)
    lines += [f"WARNING: {w}" for w in result.warnings]
    lines += [f"Pruned: {n}" for n in result.pruned]
    return lines


def failure_line(name: str, reason: str) -> str:
    return f"Backup {name} FAILED: {reason}"

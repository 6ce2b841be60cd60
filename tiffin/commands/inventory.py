"""list and verify: what a target holds, and whether each stored backup is still sound.

Everything comes from the target itself: backup names (UTC), listed sizes and manifests.
verify re-reads every stored byte once: it counts and hashes them against the manifest (each
chunk of a chunked backup against the manifest's parts, in order), and in the same pass
decrypts (given an age identity) and decompresses the stream to its end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tiffin.catalog.backup import COMPLETE, DAMAGED, INCOMPLETE, PARTIAL, Backup
from tiffin.catalog.holdings import VANISHED, latest, select, survey
from tiffin.catalog.naming import MANIFEST_SUFFIX, parse_name
from tiffin.engine.stored import PartsCheck, decoders_for, read_path
from tiffin.engine.streams import BLOCK, Reader
from tiffin.errors import BackupFailed, NotFound, TargetError
from tiffin.targets.base import Target

REMOVED = "REMOVED"  # a verdict: removed whole (by a prune) while verify ran


def table(items: list[Backup]) -> list[str]:
    """Given items, return the lines of an aligned table, newest first."""
    rows = [("NAME", "WHAT", "SIZE", "CREATED (UTC)", "STATUS")]
    for i in items:
        created = i.created.strftime("%Y-%m-%d %H:%M:%S")
        status = (
            i.state if i.state in (COMPLETE, INCOMPLETE, DAMAGED) else f"incomplete ({i.state})"
        )
        rows.append((i.name, i.what, str(i.size), created, status))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    return [
        "  ".join(
            (cell.rjust(widths[c]) if c == 2 else cell.ljust(widths[c])) for c, cell in enumerate(r)
        ).rstrip()
        for r in rows
    ]


# ---------------------------------------------------------------- verify


@dataclass(frozen=True)
class Verdict:
    """What verify found for one backup."""

    name: str
    state: str  # OK, FAILED or INCOMPLETE
    size: int = 0
    sha256: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "OK"

    def line(self) -> str:
        if self.state == REMOVED:
            return f"REMOVED {self.name}: it was removed while being verified"
        if self.ok:
            note = f"; {self.reason}" if self.reason else ""
            return f"OK {self.name} ({self.size} bytes, sha256 {self.sha256}{note})"
        return f"{self.state} {self.name}: {self.reason}"


def _decoders(name: str, identity: str | None) -> tuple[list[Any], str]:
    """Return the decoding stages, or none and why the stream cannot be decoded here. Raise
    UsageError if the identity file is unusable."""
    parsed = parse_name(name)
    if parsed is not None and parsed.encrypted and not identity:
        return [], "not decrypted: give --identity FILE to check that it decompresses"
    try:
        return decoders_for(name, identity), ""
    except ImportError:
        return [], "not decrypted: this tiffin cannot read age (install pyrage)"


def verify_one(target: Target, item: Backup, identity: str | None = None) -> Verdict:
    """Given a target, one of its items and an optional age identity file, re-read the
    stored bytes and return the Verdict: sizes and sha256 (each chunk's too) against the
    manifest, and that the stream decrypts and decompresses to its end."""
    name, m = item.name, item.manifest
    if item.problem == VANISHED:
        return Verdict(name, REMOVED)
    if item.state in (INCOMPLETE, PARTIAL):
        return Verdict(name, "INCOMPLETE", reason=item.problem)
    if m is None:
        return Verdict(name, "FAILED", reason=item.problem)
    stages, note = _decoders(name, identity)
    try:
        stored: Reader = target.open(name)
    except TargetError as exc:
        if _removed(target, name):
            return Verdict(name, REMOVED)
        if isinstance(exc, NotFound):
            exc = NotFound("its bytes are gone (the manifest is still here)")
        return Verdict(name, "FAILED", reason=str(exc))
    parts = PartsCheck(stored, m.parts) if m.parts else None
    raw, stream, decoded = read_path(parts if parts is not None else stored, stages)
    undecoded = ""
    try:
        try:
            while decoded.read(BLOCK):
                pass
        except TargetError:
            raise
        except BackupFailed as exc:
            undecoded = f"the stream does not decode to its end: {exc}"
        while stream.read(BLOCK):  # the rest, after a stream that did not decode
            pass
    except TargetError as exc:
        return Verdict(name, REMOVED if _removed(target, name) else "FAILED", reason=str(exc))
    finally:
        stream.close()
    problems = []
    if raw.size != m.size:
        problems.append(f"it holds {raw.size} bytes, its manifest says {m.size}")
    elif raw.sha256 != m.sha256:
        problems.append("its sha256 does not match its manifest")
    if parts is not None and parts.problem():
        problems.append(parts.problem())
    if undecoded:
        problems.append(undecoded)
    if problems:
        return Verdict(name, "FAILED", raw.size, raw.sha256, "; ".join(problems))
    if m.parts:
        note = f"{len(m.parts)} chunks" + (f"; {note}" if note else "")
    return Verdict(name, "OK", raw.size, raw.sha256, note)


def _removed(target: Target, name: str) -> bool:
    """Whether NAME's manifest, read before, is gone: removed whole (manifest first), not lost."""
    try:
        return target.stat(name + MANIFEST_SUFFIX) is None
    except TargetError:
        return False


def pick(target: Target, name: str | None, label: str | None = None) -> list[Backup]:
    """Given NAME, 'latest' or None (all), return the items to verify. Raise NotFound if NAME
    is not at the target, or there is no complete backup for 'latest'."""
    if name == "latest":
        newest = latest(target, label, read=True)
        if newest is None:
            raise NotFound("there is no complete backup here to verify as 'latest'")
        return [newest]
    items = survey(target)
    if name is None:
        return select(items, label, None)
    found = [i for i in items if i.name == name]
    if not found:
        raise NotFound(f"there is no backup named {name} here")
    return [i for i in found if i.state != PARTIAL] or found


def summary(verdicts: list[Verdict]) -> str:
    """Given the verdicts of verify --all, return its last line."""
    count = {s: sum(v.state == s for v in verdicts) for s in ("OK", "FAILED", "INCOMPLETE")}
    removed = sum(v.state == REMOVED for v in verdicts)
    return (
        f"Verified {len(verdicts)} backups: {count['OK']} OK, {count['FAILED']} FAILED, "
        f"{count['INCOMPLETE']} incomplete"
        + (f", {removed} removed while being verified." if removed else ".")
    )


def problem(verdicts: list[Verdict], every: bool) -> str:
    """Given verify's verdicts, return why it fails (exit 1), or ''. With --all, a backup
    removed meanwhile is no failure; a NAME asked for and removed is, and is said so."""
    if not every and verdicts and verdicts[0].state == REMOVED:
        return f"{verdicts[0].name} was removed while being verified"
    failed = [v.name for v in verdicts if v.state == "FAILED" or (not every and not v.ok)]
    return f"{', '.join(failed)} failed verification" if failed else ""


def verify(target: Target, items: list[Backup], identity: str | None = None) -> Iterator[Verdict]:
    """Yield one Verdict per item, in order, as each is verified."""
    for item in items:
        yield verify_one(target, item, identity)

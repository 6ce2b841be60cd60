"""tiffin.tell.metrics.merge, the pure heart of a shared metrics file: any label text (a
target path is a user's, a job name a config's) comes back exactly as written, other jobs'
series and other tools' lines are kept, and a failure never moves the last success."""

from __future__ import annotations

from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tiffin.tell import metrics

labels = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


def samples(text: str) -> dict[tuple[str, str, str, str], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("tiffin_"):
                found[s.name, s.labels["job"], s.labels["what"], s.labels["target"]] = s.value
    return found


def outcome(job: str, target: str, ok: bool, when: float, kind: str = metrics.BACKUP):
    return metrics.Outcome(kind, job, "data", target, ok, when, 1.5, 42 if ok else None)


def test_kinds_keep_to_their_own_series():
    text, _ = metrics.merge("", outcome("j", "t", True, 10.0))
    text, _ = metrics.merge(text, outcome("j", "t", False, 20.0, metrics.DRILL))
    text, _ = metrics.merge(text, outcome("j", "t", True, 30.0, metrics.ARCHIVE))
    got = samples(text)
    assert got["tiffin_last_status", "j", "data", "t"] == 1  # neither moved the backup's
    assert got["tiffin_drill_last_status", "j", "data", "t"] == 0
    assert ("tiffin_drill_last_success_timestamp_seconds", "j", "data", "t") not in got
    assert got["tiffin_archive_last_file_timestamp_seconds", "j", "data", "t"] == 30.0

"""The shared metrics file against any input (tiffin.tell.metrics.merge): any label text (a
target path is a user's, a job name a config's) comes back exactly as written, other jobs'
series and other tools' lines are kept, and a damaged file never stops the next write."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.faults.tried import tried
from tests.unit.tell.test_metrics_merge import outcome, samples
from tiffin.tell import metrics

labels = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@tried(
    "hostile",
    "Any text as a job name or target in a shared metrics file",
    "hypothesis: job and target labels of any Unicode text (quotes, backslashes, line breaks, "
    "control characters), written after another job's series and another tool's line",
    "each label reads back exactly; the other job's series and the other tool's line are kept; "
    "a failure keeps the last success",
)
@settings(max_examples=150, deadline=None)
@given(job=labels, target=labels, other=labels)
def test_any_label_text_round_trips_and_others_are_kept(job, target, other):
    foreign = '# HELP node_thing x\n# TYPE node_thing gauge\nnode_thing{a="b"} 7\n'
    text, warnings = metrics.merge(foreign, outcome(other, "file:///o", True, 100.0))
    text, warnings = metrics.merge(text, outcome(job, target, True, 200.0))
    text, more = metrics.merge(text, outcome(job, target, False, 300.0))
    assert warnings == more == []
    got = samples(text)
    key = (job, "data", target)
    assert got["tiffin_last_status", *key] == 0
    assert got["tiffin_last_run_timestamp_seconds", *key] == 300.0
    assert got["tiffin_last_success_timestamp_seconds", *key] == 200.0
    assert got["tiffin_last_size_bytes", *key] == 42
    if other != job:
        assert got["tiffin_last_success_timestamp_seconds", other, "data", "file:///o"] == 100.0
    assert 'node_thing{a="b"} 7\n' in text
    assert text.count("# TYPE tiffin_last_status gauge") == 1


@tried(
    "fuzz",
    "A damaged metrics file",
    "hypothesis: a cut tiffin line followed by any text",
    "the next write leaves a file Prometheus's parser reads, with this run's series in it",
)
@settings(max_examples=100, deadline=None)
@given(garbage=st.text(max_size=300))
def test_a_damaged_file_never_stops_the_next_write(garbage):
    text, _ = metrics.merge("tiffin_last_status{" + garbage, outcome("j", "t", True, 5.0))
    assert samples(text)["tiffin_last_status", "j", "data", "t"] == 1

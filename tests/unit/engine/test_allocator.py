"""The pipeline's 1 MiB blocks come from glibc's heap, not from fresh pages each time."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import os, resource, sys
from tiffin.engine.streams import BLOCK, keep_blocks_in_heap
tuned = sys.argv[1] == "tuned"
if tuned:
    assert keep_blocks_in_heap()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(200):  # as a stage does: make a block, hand it on, drop it
    block = bytes(bytearray(BLOCK))
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", CODE, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


def test_blocks_reuse_heap_pages_instead_of_faulting_in_new_ones() -> None:
    # 200 blocks of 1 MiB: 51,200 pages if every block is mapped afresh.
    assert faults("plain") > 20_000
    assert faults("tuned") < 2_000

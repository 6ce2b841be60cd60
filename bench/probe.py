"""Run `tiffin ARGS` in this process, then write its own peak RSS and disk writes as JSON to
the file named by $BENCH_PROBE: the figures of tiffin alone, without its dump tool.

The peak RSS is VmHWM, the high-water mark of this process's own memory since exec: getrusage's
ru_maxrss would also count the memory of the (large) bench process this one was forked from."""

from __future__ import annotations

import json
import os
import resource
import sys

from tiffin.cli import main


def own_figures() -> dict[str, int]:
    """Return this process's peak RSS (KiB) and bytes written to storage so far."""
    figures = {"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                figures["maxrss_kib"] = int(line.split()[1])
    with open("/proc/self/io", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "write_bytes":
                figures["write_bytes"] = int(value)
    return figures


if __name__ == "__main__":
    try:
        status = main(sys.argv[1:])
    finally:
        with open(os.environ["BENCH_PROBE"], "w", encoding="ascii") as out:
            json.dump(own_figures(), out)
    # As the installed command (tiffin.entry.run) ends: flush, then leave without teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)

"""The `tiffin` command's entry point. PostgreSQL starts wal-push and wal-fetch once per WAL
file, so they start here without loading the rest of tiffin (its option table, sources,
codecs: about 0.1 s a call). Everything else, and any wal-push or wal-fetch line that this
lean reading does not take as it stands (--help, an option it does not know, a malformed
value), goes to tiffin.cli, which reads it in full and says what is wrong."""

from __future__ import annotations

import os
import sys

# Loaded on every call PostgreSQL makes: nothing more than os and sys before the spool says
# whether the work was done ahead (typing, signal, json each cost milliseconds a call).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

WAL = ("wal-push", "wal-fetch")


def done_before(
    command: str, positional: list[str], values: dict[str, Any]
) -> tuple[bool, int | None]:
    """Given a lean-read wal-push or wal-fetch, return (True, None) if a helper did its work
    ahead (wal-push's file stored and checked as it is now; wal-fetch's file fetched, checked
    and now moved into place), waiting while a helper is at it; else (False, the spool's
    lock if this call now leads). Only os, fcntl and time are loaded for this."""
    from tiffin.commands.walask import enough, key_of
    from tiffin.commands.walspool import FetchSpool, PushSpool, settle

    wanted = 1 if command == "wal-push" else 2
    if not enough(positional, wanted):
        return False, None  # malformed: the full path says so
    key = key_of(positional[:-wanted], values)
    path = positional[-1]
    wait = float(values.get("timeout") or 120.0)
    if command == "wal-push":
        push = PushSpool(path, key)
        name, st = os.path.basename(path), os.stat(path)
        return settle(push, lambda: push.take(name, st), lambda: not push.failed(name), wait)
    name, fetch = positional[-2], FetchSpool(path, key)
    return settle(fetch, lambda: fetch.take(name, path), lambda: fetch.planned(name), wait)


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_wal(
    command: str,
    positional: list[str],
    values: dict[str, Any],
    lock: int | None = None,
    done: bool = False,
) -> int:
    """Run wal-push or wal-fetch, done_before() having found no work done ahead and LOCK the
    spool's lock if this call leads; return the exit status, printing one sentence on
    failure."""
    import signal

    from tiffin.errors import ExitStatus, TiffinError, failure_line, os_error_text

    signal.signal(signal.SIGTERM, _on_sigterm)
    debug = bool(values.get("debug"))
    try:
        from tiffin import walargs
        from tiffin.commands import wal

        key = walargs.spool_key(command, positional, values)
        if values.get("env_file"):
            from tiffin import config

            config.load_env_files(values["env_file"])
        job = walargs.wal_job(command, positional, values, key)
        if command == walargs.PUSH:
            wal.push(job, lock, settled=True, done=done)
        else:
            wal.fetch(job, lock, settled=True)
        return ExitStatus.OK
    except TiffinError as exc:
        _traceback(debug)
        message = failure_line(exc.subject, exc) if exc.subject else f"tiffin: {exc}"
        _say(message)
        return exc.exit_status
    except KeyboardInterrupt:
        _say("tiffin: interrupted; nothing was reported done")
        return ExitStatus.FAILED
    except OSError as exc:
        _traceback(debug)
        _say(f"tiffin: {os_error_text(exc)}")
        return ExitStatus.FAILED
    except Exception as exc:
        _traceback(debug)
        _say(
            f"tiffin: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)"
        )
        return ExitStatus.FAILED


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _traceback(debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exc()


def main(argv: Sequence[str] | None = None) -> int:
    """Run tiffin; return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in WAL:
        from tiffin.commands.walask import lean_values, served

        lean = lean_values(args[1:])
        if lean is not None and args[0] == "wal-fetch":
            status = served(*lean)
            if status is not None:
                return status
        if lean is not None:
            try:
                done, lock = done_before(args[0], *lean)
            except OSError:  # e.g. no WAL file at %p: the full run says so
                done, lock = False, None
            if done and not lean[1].get("metrics_file") and not lean[1].get("pushgateway"):
                return 0
            return run_wal(args[0], *lean, lock, done)
    from tiffin.cli import main as full

    return full(args)


def run() -> None:
    """The installed `tiffin` command: run main(), flush what it wrote, and leave at once.
    Everything a run does is done when main() returns (children ended, files synced, the
    report written); the interpreter's own teardown of every module and object would only add
    wall time."""
    status = main()
    if "tiffin.engine.process" in sys.modules:  # no child outlives tiffin, even for a moment
        sys.modules["tiffin.engine.process"].end_all()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe: the report did not reach its reader
            status = status or 1
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    os._exit(status)


if __name__ == "__main__":
    run()

"""A backup caught mid-stream, deterministically.

`tiffin backup` runs in the background, as cron runs it. The dump tool it starts is found
among its children; once the tool has written enough bytes (its /proc/PID/io), it is frozen
with SIGSTOP: the stream then stands still mid-way, an upload in progress at the target,
while the test makes its fault happen (stop a server, kill a session, signal tiffin ...).
Thawing the tool (SIGCONT) lets the stream meet the fault.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from email.message import EmailMessage
from pathlib import Path

from tests.e2e.helpers import tiffin_exe
from tests.faults.places import Place
from tests.servers.smtp import SMTPServer

DUMP_TOOLS = ("mariadb-dump", "mysqldump", "pg_dump", "pg_dumpall", "pg_basebackup")


def wait_for(check: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def children_of(pid: int) -> list[tuple[int, str]]:
    """Return (pid, argv[0]) of every live child of PID but a version or help probe."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if "--version" in argv or "--help" in argv:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append((int(entry), argv[0]))
    return found


def alive(pid: int) -> bool:
    """Whether PID runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def written(pid: int, field: str = "wchar") -> int:
    """Return the bytes PID has written so far (FIELD rchar: read), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def default_signals() -> None:
    """Reset SIGINT and SIGTERM to their defaults (in a child, before it runs its program)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


# A launcher that starts its program with SIGINT ignored, as `nohup CMD &` does.
SIGINT_IGNORED = (
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execvp(sys.argv[1], sys.argv[1:])",
)


class Run:
    """One `tiffin ARGS` in the background."""

    def __init__(
        self, args: Sequence[str], env: dict[str, str], launcher: Sequence[str] = ()
    ) -> None:
        self.args = list(args)
        self.proc = subprocess.Popen(
            [*launcher, tiffin_exe(), *args],
            env=env,
            # The run starts with the default signal dispositions, whatever this test
            # process inherited (`nohup ... &` ignores SIGINT): what a test signals is tiffin.
            preexec_fn=default_signals,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.frozen: list[int] = []
        self.started = time.monotonic()
        self.out = self.err = ""

    def tool(self, timeout: float = 60) -> int:
        """Wait for tiffin's dump tool to start; return its pid."""
        found: list[int] = []

        def look() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"tiffin ended before its dump tool started:\n{self.finish()}")
            found[:] = [p for p, a in children_of(self.proc.pid) if a.endswith(DUMP_TOOLS)]
            return bool(found)

        wait_for(look, "the dump tool", timeout)
        return found[0]

    def freeze_midstream(self, place: Place, min_bytes: int | None = None) -> int:
        """Wait until the dump tool has written MIN_BYTES (default PLACE.midway), freeze it
        (SIGSTOP), and wait until the target shows an upload in progress. Return its pid."""
        pid = self.tool()
        min_bytes = min_bytes or place.midway
        wait_for(lambda: written(pid) >= min_bytes or not alive(pid), f"{min_bytes} bytes dumped")
        assert alive(pid), "the dump ended before the test could catch it mid-stream"
        os.kill(pid, signal.SIGSTOP)
        self.frozen.append(pid)
        wait_for(place.in_progress, f"an upload in progress at {place.kind}", 30)
        return pid

    def settle(self, place: Place) -> dict[str, int]:
        """Once the dump is frozen, wait until what PLACE stores stops growing (the bytes in
        flight have arrived); return it."""
        last: dict[str, int] = {}

        def still() -> bool:
            nonlocal last
            now = place.stored()
            same, last = now == last, now
            time.sleep(0.2)
            return same

        wait_for(still, f"the upload to {place.kind} to settle", 20)
        return last

    def thaw(self) -> None:
        for pid in self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def finish(self, timeout: float = 120) -> str:
        """Wait for tiffin to end (thawing what was frozen); return its stderr."""
        self.thaw()
        try:
            self.out, self.err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.out, self.err = self.proc.communicate()
            raise AssertionError(f"tiffin did not end within {timeout} s:\n{self.err}") from None
        finally:
            self.cleanup()
        return self.err

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def cleanup(self) -> None:
        """End a dump tool left behind (it is tiffin's child, started by this test)."""
        self.thaw()
        for pid in self.frozen:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running(
    args: Sequence[str], env: dict[str, str], launcher: Sequence[str] = ()
) -> Iterator[Run]:
    """A background run that never outlives the test (started through LAUNCHER, if given)."""
    run = Run(args, env, launcher)
    try:
        yield run
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.communicate()
        run.cleanup()


LABEL = "faults"


def backup_args(what: str, place: Place, *options: str) -> list[str]:
    """The command line of a backup of WHAT to PLACE with the test's label, a timeout that
    keeps a hang short, and OPTIONS (the source's connection ...)."""
    return ["backup", what, *place.args, "--label", LABEL, "--timeout", "20", *options]


def assert_failed(run: Run, *needles: str) -> str:
    """Assert that RUN ended with exit 1 and one `Backup NAME FAILED: reason` report naming
    the backup, holding every one of NEEDLES and no traceback; return the report."""
    err = run.err
    assert run.proc.returncode == 1, f"exit {run.proc.returncode}\n{run.out}\n{err}"
    assert "Traceback" not in err, err
    reports = [ln for ln in err.splitlines() if ln.startswith(f"Backup {LABEL}_")]
    assert len(reports) == 1 and " FAILED: " in reports[0], err
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err}"
    assert "completed" not in run.out, run.out
    return reports[0]


def mailed(smtp: SMTPServer) -> tuple[str, dict[str, str]]:
    """Return a recipient of the test's own and the environment that mails it through SMTP."""
    return f"faults-{uuid.uuid4().hex[:10]}@example.org", {
        "TIFFIN_SMTP_URL": f"smtp://{smtp.host}:{smtp.port}"
    }


def mail_to(smtp: SMTPServer, to: str, timeout: float = 15) -> EmailMessage:
    """Wait for the one mail sent to TO; return it."""
    deadline = time.monotonic() + timeout
    while not (found := [m for m in smtp.messages() if to in str(m["To"])]):
        assert time.monotonic() < deadline, f"no report was mailed to {to}"
        time.sleep(0.05)
    assert len(found) == 1, found
    return found[0]

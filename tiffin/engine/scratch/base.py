"""What every scratch server shares: its folder, its OS user, its jail, start and stop."""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

from tiffin.engine import process
from tiffin.errors import BackupFailed, TiffinError

JAIL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jail.py")
OS_USER = "nobody"  # the scratch server's OS user when tiffin runs as root
READY_SECONDS = 120
STOP_SECONDS = 60


def landlock_abi() -> int:
    """Return the kernel's Landlock ABI version, 0 if it has none."""
    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall
        syscall.restype = ctypes.c_long
        return max(0, int(syscall(444, None, 0, 1)))
    except (OSError, AttributeError):
        return 0


def _reachable_by_others(path: str) -> bool:
    """Whether every folder from / down to PATH may be entered by any user."""
    path = os.path.realpath(path)
    while True:
        if not os.stat(path).st_mode & 0o001:
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


class ScratchServer:
    """A throwaway server: subclasses set `kind` and `package` and implement _start()."""

    kind = "database"
    package = ""
    stop_signal = signal.SIGTERM

    def __init__(self) -> None:
        self.dir = ""
        self.child: process.Child | None = None
        self.user = OS_USER if os.geteuid() == 0 else None
        self.jailed = False  # by Landlock
        self.hidden = False  # in a mount namespace where no other server's socket is

    # -- for subclasses

    def _start(self) -> None:
        raise NotImplementedError

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def folder(self, name: str) -> str:
        """Make a private 0700 folder NAME in the scratch folder, owned by the server's user."""
        path = self.path(name)
        os.mkdir(path, 0o700)
        self._own(path)
        return path

    def _own(self, path: str) -> None:
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def env(self) -> dict[str, str]:
        """The server's whole environment: nothing of tiffin's own (no secret) reaches it."""
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": self.dir,
            "TMPDIR": self.path("tmp"),
        }

    def jail_cmd(self, cmd: Sequence[str], landlock: bool) -> tuple[str, ...]:
        """Given a server command, return it run through the jail (engine/scratch/jail.py)."""
        opts: list[str] = ["--user", self.user] if self.user else []
        if landlock and self.hidden:
            opts += ["--hide", "required"]
        if landlock and self.jailed:
            opts += ["--landlock", "required"]
        if landlock:
            opts += ["--write", self.dir]
        return (sys.executable, "-I", JAIL, *opts, "--", *cmd)

    def run(self, cmd: Sequence[str], name: str) -> None:
        """Run a set-up command (initdb, mariadb-install-db) as the server's user, unjailed."""
        child = process.Child(
            self.jail_cmd(cmd, False),
            name=name,
            env=self.env(),
            inherit_env=False,
            stdout=subprocess.DEVNULL,
            cwd=self.dir,
        )
        try:
            rc = child.wait(READY_SECONDS)
        finally:
            _end_group(child)
        if rc != 0:
            raise BackupFailed(
                f"{name} could not set up the scratch {self.kind} server: "
                + (child.stderr_tail.splitlines() or ["no message"])[-1]
            )

    def _can_hide(self) -> bool:
        """Whether the jail can give the server a mount namespace here: as root, a kernel or
        container that allows it; as any other user, one that allows unprivileged user
        namespaces too."""
        cmd = (
            sys.executable,
            "-I",
            JAIL,
            "--hide",
            "required",
            "--write",
            self.dir,
            "--",
            "/bin/true",
        )
        child = process.Child(
            cmd,
            name="jail",
            env=self.env(),
            inherit_env=False,
            stdout=subprocess.DEVNULL,
            cwd=self.dir,
        )
        return child.wait(READY_SECONDS) == 0

    def spawn(self, cmd: Sequence[str], name: str) -> None:
        """Start the server itself, jailed; its PID is the one tiffin stops."""
        self.child = process.Child(
            self.jail_cmd(cmd, True),
            name=name,
            env=self.env(),
            inherit_env=False,
            stdout=subprocess.DEVNULL,
            cwd=self.dir,
        )

    def wait_until(self, ready: Callable[[], bool]) -> None:
        """Wait (bounded) until READY() says yes. Raise BackupFailed if the server ends first."""
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            assert self.child is not None
            if self.child.proc.poll() is not None:
                tail = self.child.stderr_tail.splitlines() or ["no message"]
                raise BackupFailed(f"the scratch {self.kind} server did not start: {tail[-1]}")
            if ready():
                return
            time.sleep(0.1)
        raise BackupFailed(f"the scratch {self.kind} server did not start in {READY_SECONDS} s")

    def weaknesses(self) -> list[str]:
        """What this server's jail lacked here, one sentence each (drill warns of them)."""
        out = []
        if not self.jailed:
            out.append(
                f"this kernel has no Landlock: the scratch {self.kind} server ran without its "
                "jail, so a hostile dump could have run programs or written files as "
                f"{self.user or 'you'}"
            )
        if not self.hidden:
            out.append(
                f"no mount namespace could be made here: the scratch {self.kind} server could "
                "reach the Unix sockets of other servers on this machine"
                + ("" if self.user else " that you can reach")
            )
        return out

    # -- lifecycle

    def start(self) -> Self:
        """Make the scratch folder and start the server. Raise BackupFailed (one sentence)
        if it cannot be; nothing is left behind then."""
        parent = tempfile.gettempdir()
        if self.user:
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                raise BackupFailed(
                    f"the scratch {self.kind} server must not run as root, and there is no "
                    f"OS user {self.user} here to run it as"
                ) from None
        if self.user and not _reachable_by_others(parent):
            raise BackupFailed(
                f"the scratch {self.kind} server runs as {self.user}, who cannot enter "
                f"{parent}: set TMPDIR to a folder every user can enter, such as /tmp"
            )
        self.jailed = landlock_abi() > 0
        try:
            self.dir = tempfile.mkdtemp(prefix="tiffin_scratch_", dir=parent)
            self._own(self.dir)
            self.hidden = self._can_hide()
            self.folder("tmp")
            self._start()
        except BaseException as exc:
            try:
                self.stop()
            except TiffinError:
                pass
            if isinstance(exc, OSError):
                raise BackupFailed(f"cannot make the scratch {self.kind} server: {exc}") from None
            raise
        return self

    def stop(self) -> None:
        """Stop the server by its PID (then kill it if it lingers) and remove its folder.
        Raise BackupFailed naming the folder if it cannot be removed."""
        if self.child is not None:
            if self.child.proc.poll() is None:
                try:
                    self.child.proc.send_signal(self.stop_signal)
                except OSError:
                    pass
            self.child.wait(STOP_SECONDS)  # kills it after that
            _end_group(self.child)
            self.child = None
        if self.dir:
            for _ in range(25):  # a process that was just killed may still be writing
                shutil.rmtree(self.dir, ignore_errors=True)
                if not os.path.lexists(self.dir):
                    break
                time.sleep(0.2)
            if os.path.lexists(self.dir):
                raise BackupFailed(f"the scratch folder {self.dir} could not be removed: remove it")
            self.dir = ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _end_group(child: process.Child) -> None:
    """Kill whatever is left of the process group CHILD leads (see jail.py), and reap CHILD."""
    try:
        os.killpg(child.proc.pid, signal.SIGKILL)
    except OSError:
        pass
    child.wait()


def answers(cmd: Sequence[str], name: str) -> bool:
    """Given a client command that runs SELECT 1 on a scratch server, return whether the
    server answered (within 30 seconds)."""
    try:
        process.run(cmd, name=name, timeout=30)
    except BackupFailed:
        return False
    return True


def find_binary(name: str, dirs: Sequence[str]) -> str | None:
    """Return the path of the executable NAME in the first of DIRS that has it, else on PATH."""
    for d in dirs:
        path = os.path.join(d, name)
        if os.access(path, os.X_OK):
            return path
    return process.which(name)

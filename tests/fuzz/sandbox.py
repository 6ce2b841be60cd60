"""tiffin's command line run in this process, with nothing to reach and nothing to spoil.

HOME, the working folder and TMPDIR are a temp folder; every server tiffin could reach by
default (S3, SMTP) is a closed loopback port; `crontab`, `systemctl` and `sendmail` on PATH
are stand-ins that only write into the temp folder. An audit hook (PEP 578) watches every
run: a name lookup or connection beyond the loopback is refused (as on a machine without
network) and noted, a file written, removed or renamed outside the temp folder is refused
and noted, and each connection or child process is counted as contacting something.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import os
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiffin import cli

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# Audit events that change the file system, and which of their arguments are paths.
_PATH_EVENTS = {
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.link": (1,),
    "os.symlink": (1,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "os.truncate": (0,),
    "shutil.rmtree": (0,),
}
STUBS = {
    "crontab": '#!/bin/sh\ncase "$1" in -l) cat "$HOME/crontab" 2>/dev/null;; -) cat > '
    '"$HOME/crontab";; esac\n',
    "systemctl": "#!/bin/sh\nexit 0\n",
    "sendmail": "#!/bin/sh\ncat > /dev/null; exit 1\n",
}


def _loopback(host: object) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(text.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    contacts: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


class Sandbox:
    """One temp folder in which `run(argv)` runs tiffin.cli.main."""

    _active: Sandbox | None = None
    _hooked = False

    def __init__(self, root: Path, closed_port: int) -> None:
        self.root = root.resolve()
        self.port = closed_port
        self.contacts: list[str] = []
        self.violations: list[str] = []
        bindir = self.root / "bin"
        bindir.mkdir(exist_ok=True)
        for name, body in STUBS.items():
            (bindir / name).write_text(body)
            (bindir / name).chmod(0o755)
        (self.root / "tmp").mkdir(exist_ok=True)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.upper().startswith(("AWS_", "TIFFIN_", "PG", "MYSQL", "XDG_", "SSH_"))
            and not k.upper().endswith("_PROXY")
        }
        self.env.update(
            HOME=str(self.root),
            TMPDIR=str(self.root / "tmp"),
            PATH=f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_ACCESS_KEY_ID="fuzz",
            AWS_SECRET_ACCESS_KEY="fuzz-secret",
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed_port}",
            TIFFIN_SMTP_URL=f"smtp://127.0.0.1:{closed_port}",
        )
        if not Sandbox._hooked:
            sys.addaudithook(Sandbox._hook)
            Sandbox._hooked = True

    # -- the audit hook ---------------------------------------------------------------
    @staticmethod
    def _hook(event: str, args: tuple[Any, ...]) -> None:
        box = Sandbox._active
        if box is not None:
            box._audit(event, args)

    def _outside(self, path: object) -> str | None:
        if isinstance(path, int) or path is None:
            return None
        text = os.fsdecode(path) if isinstance(path, bytes | os.PathLike) else str(path)
        full = os.path.abspath(os.path.join(self.root, text))
        if full == str(self.root) or full.startswith(str(self.root) + os.sep):
            return None
        if full.startswith(("/dev/fd/", "/proc/self/")) or full == "/dev/null":
            return None
        if "__pycache__" in full:  # an import's byte code, not tiffin's doing
            return None
        return full

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.getaddrinfo":
            self.contacts.append(f"lookup {args[0]}")
            if not _loopback(args[0]):
                raise socket.gaierror(socket.EAI_NONAME, "no network in the fuzz tests")
        elif event == "socket.connect":
            address = args[1]
            self.contacts.append(f"connect {address}")
            if isinstance(address, tuple) and not _loopback(address[0]):
                raise ConnectionRefusedError("no network in the fuzz tests")
        elif event == "subprocess.Popen":
            self.contacts.append(f"run {args[0]}")
        elif event == "open":
            path, mode, flags = args
            writing = any(c in (mode or "") for c in "wax+") or bool(
                mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            where = self._outside(path) if writing else None
            if where:
                self.violations.append(f"open {where} for writing")
                raise PermissionError(f"the fuzz tests may not write {where}")
        elif event in _PATH_EVENTS:
            for i in _PATH_EVENTS[event]:
                where = self._outside(args[i]) if i < len(args) else None
                if where:
                    self.violations.append(f"{event} {where}")
                    raise PermissionError(f"the fuzz tests may not change {where}")

    # -- running ----------------------------------------------------------------------
    def run(self, argv: list[str]) -> Outcome:
        """Run `tiffin ARGV` here; return its exit status, output and what it reached."""
        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        saved_term, saved_tempdir = signal.getsignal(signal.SIGTERM), tempfile.tempdir
        os.environ.clear()
        os.environ.update(self.env)
        os.chdir(self.root)
        tempfile.tempdir = str(self.root / "tmp")
        # stdout as a terminal's: text over bytes (restore --output - writes the bytes)
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="surrogateescape")
        err = io.StringIO()
        self.contacts, self.violations = [], []
        Sandbox._active = self
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(argv)
        finally:
            Sandbox._active = None
            os.environ.clear()
            os.environ.update(saved_env)
            os.chdir(saved_cwd)
            signal.signal(signal.SIGTERM, saved_term)
            tempfile.tempdir = saved_tempdir
        out.flush()
        raw = out.buffer
        assert isinstance(raw, io.BytesIO)
        stdout = raw.getvalue().decode("utf-8", "replace")
        return Outcome(code, stdout, err.getvalue(), self.contacts, self.violations)

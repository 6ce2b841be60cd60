"""SFTP over OpenSSH's own client: paramiko's SFTPClient speaks the SFTP protocol through the
pipes of `ssh -s ... sftp`, so that the SSH packets are built, sealed and sent by ssh, in C.

The checks stay tiffin's: ssh reads no config file, checks the host key strictly against
$HOME/.ssh/known_hosts alone, never prompts, and is offered the same keys paramiko would be
(--ssh-key alone, else the agent's and ~/.ssh/id_*). No secret is on its command line: the
keys are files (or the agent's), and SSH passwords are not taken at all."""

from __future__ import annotations

import fcntl
import math
import os
import re
import select
import subprocess
import threading
from collections.abc import Sequence
from contextlib import suppress
from typing import cast

import paramiko
from paramiko.sftp import SFTPError

from tiffin.engine.process import Child
from tiffin.errors import TargetError
from tiffin.targets.sftpbits import _FAILURES, _reason
from tiffin.targets.sshkeys import changed_host, unknown_host

PIPE_SIZE = 1 << 20  # a 255 KiB SFTP write in one system call, not four of 64 KiB
# OpenSSH's own order of its default ciphers with AES-GCM first: on a CPU with AES
# instructions it seals faster than chacha20-poly1305, ssh's (and scp's) first choice.
CIPHERS = (
    "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,"
    "aes128-ctr,aes192-ctr,aes256-ctr"
)
GRACE = 2.0  # seconds ssh has to end on its own once its stdin is closed


def ssh_command(
    ssh: str,
    host: str,
    port: int,
    user: str,
    keys: Sequence[str],
    only: bool,
    known_hosts: str,
    timeout: float,
) -> tuple[str, ...]:
    """Given where to log in, the key files to offer (none: the agent's keys only; ONLY: no
    key of the agent's but theirs), the known_hosts file and the timeout in seconds, return
    the argv of an ssh that runs the server's sftp subsystem on its stdin and stdout."""
    seconds = max(1, math.ceil(timeout))
    # ssh parses -o values as config lines: quote the path, and double the % of its tokens.
    known = '"' + known_hosts.replace("%", "%%") + '"'
    argv = [ssh, "-F", "/dev/null", "-T", "-x", "-a"]
    options = {
        "BatchMode": "yes",
        "StrictHostKeyChecking": "yes",
        "UserKnownHostsFile": known,
        "GlobalKnownHostsFile": "/dev/null",
        "UpdateHostKeys": "no",
        "CheckHostIP": "no",
        "PreferredAuthentications": "publickey",
        "IdentitiesOnly": "yes" if only else "no",
        "ConnectTimeout": str(seconds),
        # ssh gives up on a server that answers none of 3 keep-alives: about one timeout.
        "ServerAliveInterval": str(max(1, math.ceil(timeout / 3))),
        "ServerAliveCountMax": "3",
        "Ciphers": CIPHERS,
    }
    if not keys:
        options["IdentityFile"] = "none"  # not ~/.ssh/id_* of the passwd entry's home
    for name, value in options.items():
        argv += ["-o", f"{name}={value}"]
    for key in keys:  # absolute: ssh would read a leading ~ as a home folder
        argv += ["-i", os.path.abspath(key)]
    argv += ["-p", str(port)]
    if user:
        argv += ["-l", user]
    return (*argv, "-s", "--", host, "sftp")


def unreadable(keys: Sequence[str], known_hosts: str) -> str | None:
    """Return the first of the paths that ssh would not open as given, or None. ssh expands
    %-tokens and ${VAR} in -i paths after checking that the file exists, so no escape keeps
    one literal; in the known_hosts option a % is doubled, but ${VAR} is expanded and a "
    ends its quotes. Such a path goes through paramiko, which opens what it is given."""
    for key in keys:
        if "%" in key or "${" in key:
            return key
    if '"' in known_hosts or "${" in known_hosts or not known_hosts.isprintable():
        return known_hosts
    return None


def failure(stderr: str, host: str, port: int, where: str, user: str) -> str | None:
    """Given what ssh wrote to stderr when it ended before the SFTP session began, return the
    sentence that says why, or None if it does not tell."""
    if "HOST IDENTIFICATION HAS CHANGED" in stderr or "has changed and you have" in stderr:
        return changed_host(host, port, where)
    if "Host key verification failed" in stderr or re.search(r"host key is known for", stderr):
        return unknown_host(host, port, where)
    if "Permission denied" in stderr:
        return f"the SSH server at {where} refused the key(s) for {user}"
    if "subsystem request failed" in stderr:
        return f"the SSH server at {where} offers no SFTP"
    reached = re.search(
        r"(?:connect to host .* port \d+|Could not resolve hostname .*?): (.+)", stderr
    )
    if reached:
        return f"cannot reach the SSH server at {where}: {_lower(reached[1])}"
    why = broken(stderr)
    return f"cannot reach the SSH server at {where}: {why}" if why else None


def broken(stderr: str) -> str | None:
    """Given what ssh wrote to stderr when a session ended under us, return why, in words that
    follow a colon, or None if it does not tell."""
    if re.search(r"[Tt]imed? ?out|not responding", stderr):
        return "no answer in time"
    if re.search(r"Connection (closed|reset)|Broken pipe|kex_exchange_identification", stderr):
        return "the server closed the connection"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return _lower(lines[-1].removeprefix("ssh: ")) if lines else None


def _lower(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:]


class SSHPipe:
    """ssh's stdin and stdout as the channel paramiko's SFTPClient sends on and receives from,
    each wait for the other end bounded by the timeout (TimeoutError once it passes)."""

    def __init__(self, argv: Sequence[str], timeout: float | None) -> None:
        self.child = Child(argv, name="ssh", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        proc = self.child.proc
        assert proc.stdin is not None and proc.stdout is not None
        self._in, self._out = proc.stdin.fileno(), proc.stdout.fileno()
        for fd in (self._in, self._out):
            os.set_blocking(fd, False)
            if hasattr(fcntl, "F_SETPIPE_SZ"):  # Linux; elsewhere the default size
                with suppress(OSError):
                    fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self.timeout = timeout
        self.timed_out = False
        self.closed = False
        self._lock = threading.Lock()
        self._sending = threading.Lock()

    def get_name(self) -> str:
        return "ssh"  # what paramiko's log lines call the channel

    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout

    def gettimeout(self) -> float | None:
        return self.timeout

    def _wait(self, fd: int, event: int) -> None:
        self._check_open()
        poll = select.poll()  # one per wait: a poll object refuses two threads at once
        poll.register(fd, event)
        if not poll.poll(None if self.timeout is None else max(0, int(self.timeout * 1000))):
            self.timed_out = True
            raise TimeoutError("timed out")

    # paramiko's prefetch thread asks while the reader receives (and may close the file), and
    # a failure in either closes the pipe. A packet is sent whole under _sending, so that two
    # threads' packets never interleave; each system call holds _lock, so that none reaches a
    # descriptor that was closed, and whose number may be another file's by now.
    def send(self, data: bytes) -> int:
        self.send_all(data)
        return len(data)

    def send_all(self, *parts: bytes | memoryview) -> None:
        """Send every byte of PARTS, in order, with as few system calls as the pipe allows."""
        views = [memoryview(p) for p in parts]
        with self._sending:
            while views:
                self._wait(self._in, select.POLLOUT)
                with self._lock, suppress(BlockingIOError):  # BlockingIOError: wait again
                    self._check_open()
                    sent = os.writev(self._in, views)
                    while views and sent >= len(views[0]):
                        sent -= len(views.pop(0))
                    if views and sent:
                        views[0] = views[0][sent:]

    def recv(self, n: int) -> bytes:
        while True:
            self._wait(self._out, select.POLLIN)
            with self._lock, suppress(BlockingIOError):
                self._check_open()
                return os.read(self._out, n)

    def _check_open(self) -> None:
        if self.closed:
            raise EOFError("the ssh session is closed")

    def recv_ready(self) -> bool:
        with self._lock:
            if self.closed:
                return False
            poll = select.poll()
            poll.register(self._out, select.POLLIN)
            return bool(poll.poll(0))

    def alive(self) -> bool:
        return not self.closed and self.child.proc.poll() is None

    def openssh(self) -> bool:
        return False  # unknown: the SFTP server's own limits say how large a write it takes

    def ended(self) -> str:
        """Wait briefly for ssh to end; return what it wrote to stderr."""
        self.close()
        return self.child.stderr_tail

    def why_broken(self) -> str | None:
        if self.timed_out:
            return "no answer in time"
        return broken(self.ended())

    def close(self, abort: bool = False) -> None:
        """End ssh: close its stdin and give it GRACE seconds to end (none after a timeout or
        with ABORT), then kill it; reap it either way."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            proc = self.child.proc
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with suppress(OSError):
                        stream.close()
        if abort or self.timed_out:
            self.child.kill()
        self.child.wait(GRACE)


def connect(
    argv: Sequence[str], host: str, port: int, where: str, user: str, timeout: float
) -> tuple[paramiko.SFTPClient, SSHPipe]:
    """Given ssh's argv (see ssh_command), return an SFTP session over it and its pipe. Raise
    TargetError, one sentence, if ssh ends before the session begins."""
    pipe = SSHPipe(argv, 2 * timeout + 1)  # the first answer waits on connect and login too
    try:
        sftp = paramiko.SFTPClient(cast(paramiko.Channel, pipe))  # duck-typed: send, recv
    except (*_FAILURES, SFTPError) as exc:
        timed_out = pipe.timed_out
        said = failure(pipe.ended(), host, port, where, user)
        if said is None or timed_out:
            said = f"cannot reach the SSH server at {where}: {_reason(exc)}"
        raise TargetError(said) from None
    except BaseException:
        pipe.close(abort=True)
        raise
    pipe.settimeout(timeout)
    return sftp, pipe

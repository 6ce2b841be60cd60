"""A throwaway OpenSSH server on 127.0.0.1, key login for a dedicated OS user."""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import socket
import time
from pathlib import Path

from .base import Server
from .ports import free_port
from .proc import CommandError, make_workdir, require_executable, run_command

__all__ = ["SSHServer"]

SSHD = "/usr/sbin/sshd"  # must be started by absolute path
LOGIN_USER = "tiffintest"


def _retry(argv: list[str]) -> None:
    """useradd/usermod fail while another process holds the /etc/passwd lock."""
    for attempt in range(20):
        try:
            run_command(argv)
            return
        except CommandError as exc:
            if "lock" not in str(exc) or attempt == 19:
                raise
            time.sleep(0.25)


def _claim_user(base: str) -> tuple[str, int]:
    """Pick ``base``, else ``base2``, ``base3``...: the first login user no other
    live test session holds (flock), since each session points its home elsewhere."""
    lock_dir = "/run/lock" if os.path.isdir("/run/lock") else "/tmp"
    for n in range(1, 100):
        name = base if n == 1 else f"{base}{n}"
        fd = os.open(f"{lock_dir}/tiffin-sshd-{name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return name, fd
    raise RuntimeError(f"no free login user {base}N")


class SSHServer(Server):
    """``sshd -D -e`` with its own config and ed25519 host key.

    The login user (``tiffintest``, or ``tiffintest2``... while another test session
    holds it; created if missing, unlocked with ``usermod -p '*'``) gets a fresh
    home dir for this server (``usermod -d``), and logs in with the generated
    ed25519 key ``client_key`` only.
    """

    name = "sshd"

    def __init__(self, user: str = LOGIN_USER, port: int | None = None) -> None:
        # 0755: sshd reads authorized_keys as the login user.
        super().__init__(workdir_mode=0o755)
        self.port = port or free_port()
        self.user, self._user_lock = _claim_user(user)
        self.home: Path = make_workdir("sshhome", mode=0o755)
        self.config: Path = self.workdir / "sshd_config"
        self.host_key: Path = self.workdir / "ssh_host_ed25519_key"
        self.client_key: Path = self.workdir / "client_ed25519"
        self.authorized_keys: Path = self.workdir / "authorized_keys"
        self.known_hosts: Path = self.workdir / "known_hosts"
        self.host_key_pub = ""
        self.client_key_pub = ""

    # -- setup ----------------------------------------------------------------------
    def _setup(self) -> None:
        keygen = require_executable("ssh-keygen")
        require_executable("useradd")
        try:
            pwd.getpwnam(self.user)
        except KeyError:
            _retry(["useradd", "-M", "-s", "/bin/bash", "-d", str(self.home), self.user])
        _retry(["usermod", "-p", "*", "-d", str(self.home), self.user])
        entry = pwd.getpwnam(self.user)
        os.chown(self.home, entry.pw_uid, entry.pw_gid)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

        for key, comment in ((self.host_key, "tiffin-test-host"), (self.client_key, "tiffin-test")):
            run_command([keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)])
        self.host_key_pub = self.host_key.with_suffix(".pub").read_text().strip()
        self.client_key_pub = self.client_key.with_suffix(".pub").read_text().strip()
        self.authorized_keys.write_text(self.client_key_pub + "\n")
        self.authorized_keys.chmod(0o644)
        self.write_known_hosts(self.known_hosts)
        self.config.write_text(
            "\n".join(
                [
                    "ListenAddress 127.0.0.1",
                    f"Port {self.port}",
                    f"HostKey {self.host_key}",
                    "PidFile none",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin no",
                    f"AllowUsers {self.user}",
                    "UseDNS no",
                    "PrintMotd no",
                    "X11Forwarding no",
                    "LogLevel VERBOSE",
                    "LoginGraceTime 30",
                    "MaxStartups 100:30:200",
                    "MaxSessions 100",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )

    def _start(self) -> None:
        require_executable(SSHD)
        if not self.host_key_pub:
            self._setup()
        self._spawn(
            [SSHD, "-D", "-e", "-f", str(self.config)],
            stop_signal=signal.SIGTERM,
            cwd=self.workdir,
        )
        self._wait_until(self._banner, "SSH-2.0- banner", timeout=30)

    def _banner(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                return sock.recv(256).startswith(b"SSH-2.0-")
        except OSError:
            return False

    def close(self) -> None:
        super().close()
        if self._user_lock >= 0:
            os.close(self._user_lock)  # releases the flock
            self._user_lock = -1
        if not os.environ.get("TIFFIN_KEEP_SERVER_DIRS"):
            shutil.rmtree(self.home, ignore_errors=True)

    # -- client side ----------------------------------------------------------------
    def known_hosts_line(self) -> str:
        """``[127.0.0.1]:PORT ssh-ed25519 AAAA...``, as ssh-keyscan writes it."""
        keytype, blob = self.host_key_pub.split()[:2]
        return f"[{self.host}]:{self.port} {keytype} {blob}"

    def write_known_hosts(self, path: str | os.PathLike[str]) -> Path:
        """Write a known_hosts file trusting this server only."""
        out = Path(path)
        out.write_text(self.known_hosts_line() + "\n")
        return out

    def ssh_argv(self, *command: str) -> list[str]:
        """An OpenSSH ``ssh`` command line for this server (machine config ignored)."""
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            str(self.client_key),
            "-p",
            str(self.port),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            f"{self.user}@{self.host}",
            *command,
        ]

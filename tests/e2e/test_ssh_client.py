"""The SSH target through OpenSSH's own ssh (the default when it is on PATH) and through
paramiko (the way without it), as a user runs tiffin: what the ssh child is told, and how
each failure of the login or the connection ends."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conformance.kinds import stranger_key
from tests.e2e.helpers import tiffin, tiffin_exe
from tests.servers.env import tiffin_env
from tests.servers.sshd import SSHServer


def ssh_home(sshd: SSHServer, home: Path, known: bool = True) -> Path:
    """HOME for tiffin: the server's client key as ~/.ssh/id_ed25519 and, if KNOWN, its host
    key in ~/.ssh/known_hosts. Return the key's path."""
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    if known:
        sshd.write_known_hosts(home / ".ssh" / "known_hosts")
    key = home / ".ssh" / "id_ed25519"
    shutil.copy(sshd.client_key, key)
    key.chmod(0o600)
    return key


def where(sshd: SSHServer) -> str:
    return f"{sshd.user}@{sshd.host}:{sshd.port}"


def data_dir(tmp_path: Path, size: int = 1 << 20) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "blob.bin").write_bytes(os.urandom(size))
    return folder


def ssh_children(pid: int) -> list[int]:
    """The PIDs of the ssh processes that PID started."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() == "ssh":
                    found.append(int(child))
            except OSError:
                pass
    return found


def start_backup(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [tiffin_exe(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_ssh(proc: subprocess.Popen[str]) -> int:
    """Return the PID of the ssh that PROC runs, once it runs."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        found = ssh_children(proc.pid)
        if found:
            return found[0]
        time.sleep(0.005)
    proc.kill()
    out, err = proc.communicate()
    raise AssertionError(f"tiffin ran no ssh: {out}{err}")


def test_the_ssh_child_checks_strictly_and_holds_no_secret_in_its_argv(
    sshd: SSHServer, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    key = ssh_home(sshd, home)
    env = tiffin_env(home, TIFFIN_DB_PASSWORD="s3cret-db-pw")
    args = [
        "backup",
        "data",
        "ssh",
        where(sshd),
        "argv",
        "--dir",
        str(data_dir(tmp_path, 64 << 20)),
    ]
    proc = start_backup([*args, "--compress", "none"], env)
    try:
        argv = Path(f"/proc/{wait_for_ssh(proc)}/cmdline").read_bytes().split(b"\0")
    finally:
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    text = b" ".join(argv).decode()
    body = "".join(key.read_text().splitlines()[1:-1])  # the private key's base64
    for secret in ("s3cret-db-pw", body[:40], body[-40:]):
        assert secret not in text
    for option in (
        "BatchMode=yes",
        "StrictHostKeyChecking=yes",
        f'UserKnownHostsFile="{home}/.ssh/known_hosts"',
        "GlobalKnownHostsFile=/dev/null",
        "UpdateHostKeys=no",
    ):
        assert option.encode() in argv, (option, text)
    assert argv[1:3] == [b"-F", b"/dev/null"]  # no ~/.ssh/config or /etc/ssh/ssh_config
    assert "completed" in out


@pytest.mark.parametrize("client", ["openssh", "paramiko"])
def test_an_unknown_host_is_refused_with_the_command_that_fixes_it(
    sshd: SSHServer, tmp_path: Path, client: str
) -> None:
    home = tmp_path / "home"
    ssh_home(sshd, home, known=False)
    env = tiffin_env(home, TIFFIN_SSH_CLIENT=client)
    args = ["backup", "data", "ssh", where(sshd), "b", "--dir", str(data_dir(tmp_path))]
    r = tiffin(args, env, expect=1)
    assert (
        f"the SSH host key of 127.0.0.1:{sshd.port} is not known: check it, then add it with: "
        f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> ~/.ssh/known_hosts"
    ) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (sshd.home / "b").exists()


@pytest.mark.parametrize("client", ["openssh", "paramiko"])
def test_a_key_the_server_refuses_is_one_sentence_naming_the_user(
    sshd: SSHServer, tmp_path: Path, client: str
) -> None:
    home = tmp_path / "home"
    ssh_home(sshd, home)
    wrong = stranger_key(tmp_path / "stranger")
    env = tiffin_env(home, TIFFIN_SSH_CLIENT=client)
    args = ["backup", "data", "ssh", where(sshd), "b", "--dir", str(data_dir(tmp_path))]
    r = tiffin([*args, "--ssh-key", wrong], env, expect=1)
    assert f"the SSH server at 127.0.0.1:{sshd.port} refused the key(s) for {sshd.user}" in (
        r.stderr
    )
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_ssh_killed_mid_upload_fails_in_one_sentence_and_publishes_nothing(
    sshd: SSHServer, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    ssh_home(sshd, home)
    folder = "killed"
    args = [
        "backup",
        "data",
        "ssh",
        where(sshd),
        folder,
        "--dir",
        str(data_dir(tmp_path, 256 << 20)),
    ]
    proc = start_backup([*args, "--compress", "none", "--label", "k"], tiffin_env(home))
    try:
        ssh = wait_for_ssh(proc)
        deadline = time.monotonic() + 60
        while not list((sshd.home / folder).glob("*.partial")) and time.monotonic() < deadline:
            time.sleep(0.01)  # the upload is under way
        os.kill(ssh, signal.SIGKILL)
    finally:
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert f"the connection to the SSH server at 127.0.0.1:{sshd.port} broke while" in err
    assert "Traceback" not in err
    published = [p.name for p in (sshd.home / folder).iterdir() if not p.name.endswith(".partial")]
    assert published == []


def test_without_ssh_on_path_paramiko_carries_the_backup(sshd: SSHServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    ssh_home(sshd, home)
    bare = tmp_path / "bin"  # a PATH without ssh
    bare.mkdir()
    env = tiffin_env(home, PATH=str(bare))
    args = ["backup", "data", "ssh", where(sshd), "nossh", "--dir", str(data_dir(tmp_path))]
    r = tiffin([*args, "--compress", "none"], env)
    assert "completed" in r.stdout
    forced = tiffin(args, {**env, "TIFFIN_SSH_CLIENT": "openssh"}, expect=2)
    assert "TIFFIN_SSH_CLIENT=openssh, but there is no ssh on PATH" in forced.stderr


def test_a_key_readable_by_others_goes_through_paramiko_unless_openssh_is_asked_for(
    sshd: SSHServer, tmp_path: Path
) -> None:
    """ssh refuses such a key; paramiko, as tiffin always did, does not."""
    home = tmp_path / "home"
    key = ssh_home(sshd, home)
    key.chmod(0o640)
    env = tiffin_env(home)
    args = ["backup", "data", "ssh", where(sshd), "loose", "--dir", str(data_dir(tmp_path))]
    r = tiffin([*args, "--compress", "none"], env)
    assert "completed" in r.stdout
    forced = tiffin(args, {**env, "TIFFIN_SSH_CLIENT": "openssh"}, expect=2)
    assert f"chmod 600 {key}" in forced.stderr


def test_a_wrong_client_choice_is_a_usage_error(sshd: SSHServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    ssh_home(sshd, home)
    env = tiffin_env(home, TIFFIN_SSH_CLIENT="putty")
    args = ["backup", "data", "ssh", where(sshd), "b", "--dir", str(data_dir(tmp_path))]
    r = tiffin(args, env, expect=2)
    assert "TIFFIN_SSH_CLIENT must be auto, openssh or paramiko" in r.stderr

"""The argv tiffin gives OpenSSH's ssh, and the sentences it makes of ssh's stderr (the texts
below are what OpenSSH 9.2 writes)."""

from __future__ import annotations

from tests.servers.proc import require_executable
from tiffin.targets.sshpipe import broken, failure, ssh_command, unreadable

WHERE = "127.0.0.1:2222"


def options(argv: tuple[str, ...]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    return dict(p.split("=", 1) for p in pairs)


def test_ssh_reads_no_config_checks_host_keys_strictly_and_never_prompts() -> None:
    argv = ssh_command("/usr/bin/ssh", "db.example", 2222, "backup", ["/k/id"], True,
                       "/home/u/.ssh/known_hosts", 120.0)  # fmt: skip
    assert argv[:3] == ("/usr/bin/ssh", "-F", "/dev/null")
    assert argv[-6:] == ("-l", "backup", "-s", "--", "db.example", "sftp")
    o = options(argv)
    assert o["BatchMode"] == "yes" and o["StrictHostKeyChecking"] == "yes"
    assert o["UserKnownHostsFile"] == '"/home/u/.ssh/known_hosts"'
    assert o["GlobalKnownHostsFile"] == "/dev/null" and o["UpdateHostKeys"] == "no"
    assert o["PreferredAuthentications"] == "publickey" and o["IdentitiesOnly"] == "yes"
    assert o["ConnectTimeout"] == "120" and o["ServerAliveInterval"] == "40"
    assert o["Ciphers"].startswith("aes128-gcm@openssh.com,")
    assert argv[argv.index("-i") : argv.index("-i") + 2] == ("-i", "/k/id")
    assert argv[argv.index("-p") : argv.index("-p") + 2] == ("-p", "2222")


def test_a_known_hosts_path_with_spaces_and_percent_stays_one_path() -> None:
    argv = ssh_command("ssh", "h", 22, "u", ["/k"], True, "/home/a b/100%/.ssh/kh", 5.0)
    assert options(argv)["UserKnownHostsFile"] == '"/home/a b/100%%/.ssh/kh"'


def test_without_key_files_only_the_agent_offers_keys() -> None:
    o = options(ssh_command("ssh", "h", 22, "u", [], False, "/kh", 0.5))
    assert o["IdentityFile"] == "none" and o["IdentitiesOnly"] == "no"
    assert o["ConnectTimeout"] == "1" and o["ServerAliveInterval"] == "1"


def test_a_host_that_looks_like_an_option_is_still_a_host() -> None:
    argv = ssh_command("ssh", "-oProxyCommand=x", 22, "u", ["/k"], True, "/kh", 5.0)
    assert argv[-3:] == ("--", "-oProxyCommand=x", "sftp")


UNKNOWN = (
    "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict "
    "checking.\r\nHost key verification failed.\r\n"
)
CHANGED = (
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n"
    "Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.\r\n"
    "Host key verification failed.\r\n"
)


def test_host_key_failures_become_tiffins_sentences() -> None:
    unknown = failure(UNKNOWN, "127.0.0.1", 2222, WHERE, "u")
    assert unknown is not None and "is not known" in unknown
    assert "ssh-keyscan -p 2222 127.0.0.1 >> ~/.ssh/known_hosts" in unknown
    changed = failure(CHANGED, "127.0.0.1", 2222, WHERE, "u")
    assert changed is not None and "CHANGED" in changed
    assert "ssh-keygen -R '[127.0.0.1]:2222'" in changed


def test_login_and_connection_failures_become_one_sentence() -> None:
    cases = {
        "u@127.0.0.1: Permission denied (publickey).\r\n": (
            f"the SSH server at {WHERE} refused the key(s) for u"
        ),
        "ssh: connect to host 127.0.0.1 port 2222: Connection refused\r\n": (
            f"cannot reach the SSH server at {WHERE}: connection refused"
        ),
        "ssh: Could not resolve hostname nowhere.invalid: Name or service not known\r\n": (
            f"cannot reach the SSH server at {WHERE}: name or service not known"
        ),
        "Connection timed out during banner exchange\r\n": (
            f"cannot reach the SSH server at {WHERE}: no answer in time"
        ),
        "subsystem request failed on channel 0\r\n": f"the SSH server at {WHERE} offers no SFTP",
    }
    for stderr, sentence in cases.items():
        assert failure(stderr, "127.0.0.1", 2222, WHERE, "u") == sentence
    assert failure("", "127.0.0.1", 2222, WHERE, "u") is None


def test_a_session_cut_midway_says_why() -> None:
    assert broken("Timeout, server 127.0.0.1 not responding.\r\n") == "no answer in time"
    assert broken("Connection closed by 127.0.0.1 port 2222\r\n") == (
        "the server closed the connection"
    )
    assert broken("client_loop: send disconnect: Broken pipe\r\n") == (
        "the server closed the connection"
    )
    assert broken("") is None


def _vis(byte: int) -> str:
    """A byte of a path as ssh's log shows it: \\ doubled, others than ASCII in octal."""
    if byte == 92:
        return "\\\\"
    return chr(byte) if 32 <= byte < 127 else f"\\{byte:03o}"


KEY_NAMES = [
    "k%h",
    "100%",
    "k%%d",
    "%u%r%p",
    "a b",
    "~k",
    "k$HOME",
    "k${X}",
    'k"q',
    "k\u2028",
    "k'\\",
]


def test_every_key_path_given_to_ssh_is_the_file_it_opens(tmp_path) -> None:
    """ssh itself (no mock) says which identity files it loads: it expands ~, %-tokens and
    ${VAR} in -i paths, so a path it would change must go to paramiko instead (unreadable),
    and every other must reach ssh as the file it opens. A peer that closes at once lets ssh
    get as far as loading its keys (after the TCP connect, before the banner)."""
    import socket
    import subprocess
    import threading

    import pytest

    monkey = pytest.MonkeyPatch()
    monkey.chdir(tmp_path)  # a relative key path is the working folder's
    ssh = require_executable("ssh")  # fails under CI=true, skips elsewhere
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def hang_up() -> None:
        for _ in KEY_NAMES:
            conn, _ = listener.accept()
            conn.close()

    closer = threading.Thread(target=hang_up, daemon=True)
    closer.start()
    try:
        for name in KEY_NAMES:
            key = tmp_path / name
            key.write_text("not a key\n")
            if unreadable([str(key)], "/dev/null"):
                assert "%" in name or "${" in name
                continue
            argv = ssh_command(ssh, "127.0.0.1", port, "u", [str(key)], True, "/dev/null", 5.0)
            r = subprocess.run(
                [argv[0], "-v", *argv[1:]], capture_output=True, text=True, timeout=30
            )
            loaded = [
                line.split("identity file ", 1)[1].rsplit(" type ", 1)[0]
                for line in r.stderr.splitlines()
                if "identity file " in line and "-cert type" not in line
            ]
            shown = "".join(_vis(b) for b in bytes(key))
            assert loaded == [shown], (name, r.stderr[-500:])
    finally:
        listener.close()
        monkey.undo()


def test_a_known_hosts_path_ssh_would_expand_goes_to_paramiko() -> None:
    assert unreadable([], "/home/u/.ssh/known_hosts") is None
    assert unreadable([], "/home/100%/.ssh/known_hosts") is None  # doubled in the option
    for odd in ("/home/${USER}/kh", '/home/a"b/kh', "/home/a\nb/kh", "/home/a\u2028b/kh"):
        assert unreadable([], odd) == odd

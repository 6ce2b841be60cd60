"""The keys of an SSH target: ours (--ssh-key, else ~/.ssh/id_*) and the server's, as
~/.ssh/known_hosts knows them, with the sentences that refuse an unknown or changed host."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import paramiko
from paramiko.hostkeys import HostKeyEntry, InvalidHostKey

from tiffin.errors import TargetError, UsageError
from tiffin.job import TargetOptions

log = logging.getLogger("tiffin")

DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
NO_KEY = (
    "no SSH key found: give --ssh-key FILE, load a key into ssh-agent, or create "
    "~/.ssh/id_ed25519 (ssh-keygen -t ed25519)"
)


def _given_key(path: str) -> paramiko.PKey:
    """Given --ssh-key's FILE, return its key. Raise UsageError if it cannot be used."""
    try:
        return paramiko.PKey.from_path(path)
    except (OSError, ValueError, TypeError, paramiko.SSHException) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise UsageError(
            f"the SSH key {path} cannot be used ({why}); tiffin needs a key "
            "without a passphrase, or one loaded into ssh-agent"
        ) from None


def _default_keys() -> list[tuple[str, paramiko.PKey]]:
    """Return the passphrase-less ~/.ssh/id_ed25519, id_ecdsa, id_rsa that exist, with their
    paths, in that order."""
    found = []
    for base in DEFAULT_KEYS:
        path = os.path.join(os.path.expanduser("~"), ".ssh", base)
        if os.path.exists(path):
            try:
                found.append((path, paramiko.PKey.from_path(path)))
            except (OSError, ValueError, TypeError, paramiko.SSHException) as exc:
                log.info("skipping the SSH key %s: %s", path, exc)
    return found


def load_keys(options: TargetOptions) -> list[paramiko.PKey]:
    """Given the options, return the keys to offer: --ssh-key alone when given, else the
    agent's keys and the passphrase-less ~/.ssh/id_ed25519, id_ecdsa, id_rsa that exist.
    Raise UsageError if --ssh-key cannot be used or no key is found at all."""
    if options.ssh_key:
        return [_given_key(options.ssh_key)]
    keys: list[paramiko.PKey] = list(paramiko.Agent().get_keys())
    keys += [key for _, key in _default_keys()]
    unique = {key.asbytes(): key for key in keys}
    if not unique:
        raise UsageError(NO_KEY)
    return list(unique.values())


def key_files(options: TargetOptions) -> list[str]:
    """Given the options, return the files of the keys to offer beside the agent's, as
    load_keys finds them: --ssh-key alone, else the usable ~/.ssh/id_* (possibly none, when
    the agent holds keys). Raise UsageError as load_keys does."""
    if options.ssh_key:
        _given_key(options.ssh_key)
        return [os.path.abspath(os.path.expanduser(options.ssh_key))]
    files = [path for path, _ in _default_keys()]
    if not files and not paramiko.Agent().get_keys():
        raise UsageError(NO_KEY)
    return files


def open_to_others(path: str) -> bool:
    """Return True if OpenSSH's ssh would refuse the private key file PATH: ours, and readable
    or writable by the group or others."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.getuid() and bool(st.st_mode & 0o077)


def known_hosts_file() -> str:
    """Return the path of ~/.ssh/known_hosts ($HOME's, as tiffin reads it). Raise TargetError
    if it exists but cannot be read."""
    path = os.path.join(os.path.expanduser("~"), ".ssh", "known_hosts")
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise TargetError(f"cannot read {path}: {exc.strerror}") from None
    return path


def known_host_keys(host: str, port: int) -> Mapping[str, paramiko.PKey] | None:
    """Given a host and port, return the keys ~/.ssh/known_hosts holds for it, or None.
    Skip malformed lines as ssh does (paramiko's loader stops at them). Raise TargetError if
    the file exists but cannot be read."""
    path = known_hosts_file()
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TargetError(f"cannot read {path}: {exc.strerror}") from None
    known = paramiko.HostKeys()
    for lineno, line in enumerate(lines, 1):
        try:
            entry = HostKeyEntry.from_line(line.strip(), lineno)
        except (InvalidHostKey, paramiko.SSHException, ValueError):
            continue
        if entry is not None and entry.key is not None:
            for name in entry.hostnames:
                known.add(name, entry.key.get_name(), entry.key)
    # OpenSSH stores a host on a port other than 22 as [host]:port.
    return known.lookup(host if port == 22 else f"[{host}]:{port}")


def unknown_host(host: str, port: int, where: str) -> str:
    """Return the sentence that refuses a host whose key known_hosts does not hold."""
    return (
        f"the SSH host key of {where} is not known: check it, then add it with: "
        f"ssh-keyscan -p {port} {host} >> ~/.ssh/known_hosts"
    )


def changed_host(host: str, port: int, where: str) -> str:
    """Return the sentence that refuses a host whose key differs from known_hosts'."""
    entry = f"[{host}]:{port}" if port != 22 else host
    return (
        f"the SSH host key of {where} has CHANGED since it was stored in "
        "~/.ssh/known_hosts (someone may be intercepting the connection): check the "
        f"new key with the server's administrator, then fix known_hosts with: "
        f"ssh-keygen -R '{entry}'"
    )

"""The keys of an SSH target: ours (--ssh-key, else ~/.ssh/id_*) and the server's, as
~/.ssh/known_hosts knows them."""

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


def load_keys(options: TargetOptions) -> list[paramiko.PKey]:
    """Given the options, return the keys to offer: --ssh-key alone when given, else the
    agent's keys and the passphrase-less ~/.ssh/id_ed25519, id_ecdsa, id_rsa that exist.
    Raise UsageError if --ssh-key cannot be used or no key is found at all."""
    if options.ssh_key:
        try:
            return [paramiko.PKey.from_path(options.ssh_key)]
        except (OSError, ValueError, TypeError, paramiko.SSHException) as exc:
            why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise UsageError(
                f"the SSH key {options.ssh_key} cannot be used ({why}); tiffin needs a key "
                "without a passphrase, or one loaded into ssh-agent"
            ) from None
    keys: list[paramiko.PKey] = list(paramiko.Agent().get_keys())
    for base in DEFAULT_KEYS:
        path = os.path.join(os.path.expanduser("~"), ".ssh", base)
        if os.path.exists(path):
            try:
                keys.append(paramiko.PKey.from_path(path))
            except (OSError, ValueError, TypeError, paramiko.SSHException) as exc:
                log.info("skipping the SSH key %s: %s", path, exc)
    unique = {key.asbytes(): key for key in keys}
    if not unique:
        raise UsageError(
            "no SSH key found: give --ssh-key FILE, load a key into ssh-agent, or create "
            "~/.ssh/id_ed25519 (ssh-keygen -t ed25519)"
        )
    return list(unique.values())


def known_host_keys(host: str, port: int) -> Mapping[str, paramiko.PKey] | None:
    """Given a host and port, return the keys ~/.ssh/known_hosts holds for it, or None.
    Skip malformed lines as ssh does (paramiko's loader stops at them). Raise TargetError if
    the file exists but cannot be read."""
    path = os.path.join(os.path.expanduser("~"), ".ssh", "known_hosts")
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

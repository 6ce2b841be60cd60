"""The restore_command that `restore --into pgdata` writes: a client of the fetch helper
(walserve) that Python runs isolated and without `site`, so that a call loads this file and
a few modules of the standard library, none of tiffin's (about 10 ms a call, against 30-70 ms
for the lean entry behind the `tiffin` command and the installation's import hooks):

    PYTHON -I -S .../tiffin/commands/walask.py TIFFIN... wal-fetch TARGET [OPTIONS] %f %p

It asks the helper serving %p's spool for %f, and the helper's answer is the call's: exit 0
once the file is at %p, checked; exit 1 and the helper's sentence when it is not in the
archive. When no helper answers (none yet, as for a recovery's first call; gone; serving
another archive; a line this reading does not take as it stands), the call becomes
`TIFFIN... wal-fetch ...` itself (exec), which does its own work as it always did and starts
the helper. The client writes nothing itself: the helper puts a file at %p only whole and
checked (walserve, archive.fetch).

This module imports nothing of tiffin: the lean entry, walspool and walserve use its reading
of the command line, its key and its request.
"""

from __future__ import annotations

import os
import sys

# Loaded on every call PostgreSQL makes: os and sys alone (typing, socket, signal each cost
# milliseconds a call); the names below are for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

FETCHED, SOCK = "tiffin.fetched", "SOCK"
SOCK_PATH_MAX = 100  # AF_UNIX paths are at most 107 bytes: longer ones go through /proc


def socket_path(path: str) -> tuple[str, int | None]:
    """Given the path of a Unix socket, return a path that bind() and connect() take for it,
    and the descriptor to close once they are done (None: PATH as it is). A path longer than
    AF_UNIX holds is reached through /proc/self/fd/N of its folder, opened O_PATH (Linux);
    elsewhere the socket cannot be reached and the caller works without it."""
    if len(os.fsencode(path)) <= SOCK_PATH_MAX:
        return path, None
    flags = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC
    folder = os.open(os.path.dirname(path) or ".", flags)
    return f"/proc/self/fd/{folder}/{os.path.basename(path)}", folder


FETCH = "wal-fetch"
VALUED = frozenset(
    {
        "--label",
        "--ssh-key",
        "--endpoint-url",
        "--timeout",
        "--metrics-file",
        "--pushgateway",
        "--env-file",
    }
)
FLAGS = frozenset({"--insecure", "--debug", "--quiet"})
WAIT = 120.0  # seconds for an answer when --timeout gives none (wal-fetch's own default)


def lean_values(argv: Sequence[str]) -> tuple[list[str], dict[str, Any]] | None:
    """Given the arguments after wal-push or wal-fetch, return (positionals, option values),
    or None if anything calls for the full command line."""
    positional: list[str] = []
    values: dict[str, Any] = {}
    it = iter(argv)
    for arg in it:
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        flag, eq, value = arg.partition("=")
        dest = flag[2:].replace("-", "_")
        if flag in FLAGS and not eq:
            values[dest] = True
        elif flag in VALUED:
            if not eq:
                got = next(it, None)
                if got is None or got.startswith("-"):
                    return None
                value = got
            if flag == "--env-file":
                values.setdefault(dest, []).append(value)
            elif flag == "--timeout":
                try:
                    seconds = float(value)
                except ValueError:
                    return None
                if not 0.01 <= seconds <= 86400:
                    return None
                values[dest] = seconds
            else:
                values[dest] = value
        else:
            return None
    return positional, values


def enough(positional: list[str], wanted: int) -> bool:
    """Whether POSITIONAL holds a target (HOW WHERE [PATH], or one URL) and WANTED more."""
    url = bool(positional) and "://" in positional[0]
    return len(positional) >= (1 if url else 2) + wanted


def key_of(target_args: list[str], values: Mapping[str, Any]) -> str:
    """Given the target as the command line gives it (HOW WHERE [PATH], or a URL) and the
    option values, return what names that archive in the spools: the words, the label and
    what in the environment may change where they lead. The client, the lean entry and a
    WalJob all compute it, so that a call can be answered before loading the rest of
    tiffin."""
    env = [os.environ.get(k, "") for k in ("HOSTNAME", "AWS_ENDPOINT_URL", "HOME")]
    opts = [str(values.get(k) or "") for k in ("label", "endpoint_url")]
    files = [str(f) for f in values.get("env_file") or ()]
    return repr([list(target_args), opts, files, env])  # one line: repr escapes newlines


def ask(dest: str, key: str, name: str, wait: float) -> tuple[bool, str] | None:
    """Ask the fetch helper serving the spool beside DEST (walserve) to put the file NAME of
    the archive KEY at DEST. Return (True, "") once it is there, checked; (False, the line
    to print) if it is not in the archive; None if no helper serves here, it serves another
    archive, it failed otherwise or gave no answer within WAIT seconds (then this call does
    its own work). Only _socket is loaded for this (socket's import costs milliseconds)."""
    import _socket

    path = os.path.join(os.path.dirname(dest) or ".", FETCHED, SOCK)
    fields = [key, name, os.path.abspath(dest)]
    if any("\t" in f or "\n" in f for f in fields):
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    folder = None
    try:
        sock.settimeout(wait)
        path, folder = socket_path(path)
        sock.connect(path)
        if folder is not None:
            os.close(folder)
            folder = None
        sock.sendall(("fetch\t" + "\t".join(fields) + "\n").encode())
        answer = b""
        while not answer.endswith(b"\n"):
            got = sock.recv(4096)
            if not got or len(answer) > 1 << 16:
                return None
            answer += got
    except (OSError, UnicodeError, ValueError):  # no helper, too slow, or an odd path (a NUL)
        return None
    finally:
        sock.close()
        if folder is not None:
            os.close(folder)
    status, _, line = answer.decode("utf-8", "replace").rstrip("\n").partition("\t")
    if status == "ok":
        return True, ""
    if status == "missing":
        return False, line
    return None


def served(positional: list[str], values: Mapping[str, Any]) -> int | None:
    """Given a lean-read wal-fetch, return its exit status if the fetch helper serving the
    spool answered it (0: the file is at %p, checked; 1: it is not in the archive, said on
    stderr), else None (no helper serves this archive here: the call does its own work)."""
    if not enough(positional, 2):
        return None  # malformed: the full command line says so
    name, dest = positional[-2], positional[-1]
    answer = ask(dest, key_of(positional[:-2], values), name, float(values.get("timeout") or WAIT))
    if answer is None:
        return None
    if not answer[0]:
        sys.stderr.write(answer[1] + "\n")
        sys.stderr.flush()
    return 0 if answer[0] else 1


def main(argv: list[str]) -> int:
    """Given `TIFFIN... wal-fetch ARGS`, return the exit status of the helper's answer, or
    become that command when no helper answers."""
    if FETCH not in argv or not argv[0]:
        sys.stderr.write("usage: walask.py TIFFIN... wal-fetch HOW WHERE [PATH] %f %p\n")
        return 2
    lean = lean_values(argv[argv.index(FETCH) + 1 :])
    status = None if lean is None else served(*lean)
    if status is not None:
        return status
    try:
        os.execv(argv[0], argv)  # noqa: S606  # becomes the command it stands for: no shell
    except OSError as exc:
        sys.stderr.write(f"tiffin: cannot run {argv[0]}: {exc.strerror}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

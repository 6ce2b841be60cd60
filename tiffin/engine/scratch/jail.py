"""Start a scratch server jailed: run as `python -I jail.py [options] -- PROGRAM ARGS...`.

Before it becomes PROGRAM (by execv: the PID tiffin started stays the server's), it
- with --write DIR (repeatable), takes from itself and every process it will start, by
  Linux's Landlock, the right to execute any file but PROGRAM (and its ELF interpreter),
  to create, change or remove any file outside those folders (/dev/null aside), to bind
  or connect any TCP port, and to signal or reach abstract sockets of processes outside;
  `--landlock required` fails when the kernel lacks Landlock, `optional` goes on without;
- with --hide (`required` or `optional` as for Landlock), gives itself a mount namespace of
  its own where every top-level folder but /usr, /etc, /dev, /proc, /sys, the system's /bin,
  /lib... and the --write folders is an empty tmpfs (so are /dev/shm and /run), so that it
  cannot reach another server's Unix socket (Landlock does not govern connect() to one):
  only its own folder. As root this happens before the user is dropped; as any other user
  it first makes a user namespace that maps that user (and group) to itself, where it may
  mount (and where, past the execv, the server has no capability). /proc/PID/root of a
  process outside would lead around the hiding, and Landlock refuses it (ptrace rules);
- with --user NAME, drops to that user and its group (tiffin runs it as root);
- leads a new session and process group (so that tiffin can end all it starts, and a
  Ctrl-C meant for tiffin does not reach it), and asks the kernel to kill it when tiffin
  ends, however tiffin ends.

Standard library only, so that it runs isolated (-I) and as any user.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import signal
import struct
import sys

# Landlock's ABI (linux/landlock.h); the syscall numbers are the same on every architecture.
CREATE, ADD_RULE, RESTRICT = 444, 445, 446
FS_EXECUTE, FS_WRITE_FILE = 1 << 0, 1 << 1
FS_WRITES = sum(1 << b for b in range(4, 13)) | FS_WRITE_FILE  # remove/make anything
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_TCP = (1 << 0) | (1 << 1)
SCOPES = (1 << 0) | (1 << 1)
PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG = 38, 1
EXIT_JAIL = 126  # the jail could not be set up: the server never started


def _fail(msg: str) -> None:
    sys.stderr.write(f"jail: {msg}\n")
    sys.exit(EXIT_JAIL)


def interpreter(path: str) -> str | None:
    """Given an ELF executable, return the path of its interpreter (PT_INTERP), if any."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
            return None
        end = "<" if head[5] == 1 else ">"
        (phoff,) = struct.unpack(end + "Q", head[32:40])
        phentsize, phnum = struct.unpack(end + "HH", head[54:58])
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            (ptype,) = struct.unpack(end + "I", f.read(4))
            if ptype == 3:
                f.seek(phoff + i * phentsize + 8)
                off, _, _, size = struct.unpack(end + "QQQQ", f.read(32))
                f.seek(off)
                return f.read(size).rstrip(b"\0").decode()
    return None


def landlock(program: str, writable: list[str], required: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    abi = syscall(CREATE, None, 0, 1)
    if abi < 1:
        if required:
            _fail("this kernel has no Landlock")
        return
    fs = FS_EXECUTE | FS_WRITES | (FS_REFER if abi >= 2 else 0)
    fs |= (FS_TRUNCATE if abi >= 3 else 0) | (FS_IOCTL_DEV if abi >= 5 else 0)
    attr = struct.pack("=QQQ", fs, NET_TCP if abi >= 4 else 0, SCOPES if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = syscall(CREATE, ctypes.c_char_p(attr), size, 0)
    if ruleset < 0:
        _fail(f"cannot create a Landlock ruleset: {os.strerror(ctypes.get_errno())}")
    file_rights = fs & (FS_EXECUTE | FS_WRITE_FILE | FS_TRUNCATE | FS_IOCTL_DEV)
    rules = [(d, fs & ~FS_EXECUTE) for d in writable]
    rules.append(("/dev/null", file_rights & ~FS_EXECUTE))
    for exe in (program, interpreter(program)):
        if exe:
            rules.append((os.path.realpath(exe), FS_EXECUTE))
    for path, rights in rules:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        rule = struct.pack("=Qi", rights, fd)
        if syscall(ADD_RULE, ruleset, 1, ctypes.c_char_p(rule), 0) != 0:
            _fail(f"cannot add a Landlock rule for {path}: {os.strerror(ctypes.get_errno())}")
        os.close(fd)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or syscall(RESTRICT, ruleset, 0) != 0:
        _fail(f"cannot enter Landlock: {os.strerror(ctypes.get_errno())}")
    os.close(ruleset)


KEEP = {"usr", "etc", "dev", "proc", "sys", "bin", "sbin", "lib", "lib32", "lib64", "libx32"}
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18


def hide(program: str, writable: list[str], required: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    mount = libc.mount
    mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]

    def do(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None) -> None:
        enc = [x.encode() if x is not None else None for x in (src, dst, fstype, data)]
        if mount(enc[0], enc[1], enc[2], flags, enc[3]) != 0:
            _fail(f"cannot mount over {dst}: {os.strerror(ctypes.get_errno())}")

    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWNS | (CLONE_NEWUSER if uid != 0 else 0)) != 0:
        if required:
            _fail(f"cannot make a mount namespace: {os.strerror(ctypes.get_errno())}")
        return
    if uid != 0:  # a user namespace of our own, where we are ourselves: no other id exists
        for name, line in (
            ("setgroups", "deny"),
            ("uid_map", f"{uid} {uid} 1"),
            ("gid_map", f"{gid} {gid} 1"),
        ):
            try:
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(line)
            except OSError as exc:
                _fail(f"cannot map {name} in the user namespace: {exc.strerror}")
    do(None, "/", None, MS_REC | MS_PRIVATE, None)
    kept = [(d, os.open(d, os.O_PATH | os.O_CLOEXEC)) for d in writable]
    keep = KEEP | {os.path.realpath(program).split("/")[1]}
    empty = MS_NOSUID | MS_NODEV
    for name in sorted(os.listdir("/")):
        path = "/" + name
        if name not in keep and os.path.isdir(path) and not os.path.islink(path):
            do("tmpfs", path, "tmpfs", empty, "mode=0755,size=64k")
    for path in ("/dev/shm", "/dev/mqueue", "/run"):
        if os.path.isdir(path) and not os.path.islink(path):
            do("tmpfs", path, "tmpfs", empty, "mode=0755,size=64k")
    for d, fd in kept:
        os.makedirs(d, exist_ok=True)
        do(f"/proc/self/fd/{fd}", d, None, MS_BIND | MS_REC, None)
        os.close(fd)


def main(argv: list[str]) -> None:
    parent = os.getppid()
    if os.getpgid(0) != os.getpid():  # tiffin.engine.process starts each child leading its group
        os.setsid()  # a process group of its own: tiffin ends every process the server starts
    sep = argv.index("--")
    opts, cmd = argv[:sep], argv[sep + 1 :]
    user = None
    writable: list[str] = []
    mode = hiding = "off"
    while opts:
        key, value, *opts = opts
        if key == "--user":
            user = value
        elif key == "--write":
            writable.append(value)
        elif key == "--landlock":
            mode = value
        elif key == "--hide":
            hiding = value
    if hiding != "off":
        hide(cmd[0], writable, hiding == "required")
    if mode != "off":
        landlock(cmd[0], writable, mode == "required")
    if user:
        entry = pwd.getpwnam(user)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # tiffin ended before the signal was set
        sys.exit(EXIT_JAIL)
    try:
        os.execv(cmd[0], cmd)  # noqa: S606 - the server itself, no shell
    except OSError as exc:
        _fail(f"cannot start {cmd[0]}: {exc.strerror}")


if __name__ == "__main__":
    main(sys.argv[1:])

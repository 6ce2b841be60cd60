"""Hostile input through the installed command: archives that try to write outside the
restore folder, names and paths that try to leave the target's folder, manifests that are
not JSON or lie, and TLS certificates nobody vouches for."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import tiffin
from tests.faults.tried import tried
from tests.servers.env import tiffin_env
from tiffin.catalog.manifest import Manifest
from tiffin.catalog.naming import make_name

WHEN = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)


def tree(root: Path) -> dict[str, bytes]:
    """Every file and link under ROOT (symlinks not followed): relative path to content."""
    found: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            found[rel] = (
                os.readlink(path).encode() if os.path.islink(path) else Path(path).read_bytes()
            )
    return found


Member = tuple[tarfile.TarInfo, bytes]


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = kind, link, len(data), 0o644
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    return info, data


def store(folder: Path, label: str, tar_bytes: bytes, what: str = "data") -> str:
    """Store TAR_BYTES as a complete, uncompressed backup in FOLDER, with a true manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    name = make_name(label, what, WHEN, "none", False)
    (folder / name).write_bytes(tar_bytes)
    stamp = WHEN.strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = Manifest(
        name=name,
        what=what,
        label=label,
        started=stamp,
        finished=stamp,
        size=len(tar_bytes),
        sha256=hashlib.sha256(tar_bytes).hexdigest(),
        compression="none",
    )
    (folder / (name + ".manifest.json")).write_bytes(manifest.to_json())
    return name


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            tar.addfile(member(name, data=data)[0], io.BytesIO(data))
    return buf.getvalue()


# Each case: the members after a benign data/ok.txt, given OUTSIDE (a folder beside the
# restore folder DIR, which a member tries to reach), and whether --overwrite is given.
HOSTILE: dict[str, Callable[[Path], list[Member]]] = {
    "dot-dot path": lambda out: [member("data/../../outside/escaped.txt", data=b"x")],
    "absolute path": lambda out: [member(str(out / "escaped.txt"), data=b"x")],
    "device node": lambda out: [member("data/null", tarfile.CHRTYPE)],
    "fifo": lambda out: [member("data/fifo", tarfile.FIFOTYPE)],
    "symlink out, then a file through it": lambda out: [
        member("data/link", tarfile.SYMTYPE, link=str(out)),
        member("data/link/escaped.txt", data=b"x"),
    ],
    "relative symlink out, then a file through it": lambda out: [
        member("data/up", tarfile.SYMTYPE, link="../../outside"),
        member("data/up/escaped.txt", data=b"x"),
    ],
    "symlink to a file out, then the file": lambda out: [
        member("data/victim", tarfile.SYMTYPE, link=str(out / "victim.txt")),
        member("data/victim", data=b"overwritten"),
    ],
    "hard link to a file out": lambda out: [
        member("data/hard", tarfile.LNKTYPE, link=str(out / "victim.txt")),
        member("data/hard", data=b"overwritten"),
    ],
}


REPLACED = "symlink to a file out, then the file"


@tried(
    "hostile",
    "A backup whose archive tries to write outside the restore folder",
    "a tar is crafted (`../` names, absolute names, a device node, a fifo, a symlink leading "
    "out then a file written through it, a hard link to a file outside), stored in a folder "
    "with a true manifest, and restored with `tiffin restore local DIR NAME --into dir --dir R` "
    "(`--overwrite` too)",
    "exit 1 naming the member refused and why, no traceback; nothing outside R is created or "
    "changed (a file planted outside keeps its bytes); a symlink's target is never written "
    "through (with `--overwrite` a later file replaces the archive's own symlink itself)",
)
@pytest.mark.parametrize("case", list(HOSTILE))
def test_restoring_a_hostile_archive_never_writes_outside_the_folder(
    case: str, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(b"precious")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in [member("data/ok.txt", data=b"fine\n"), *HOSTILE[case](outside)]:
            tar.addfile(info, io.BytesIO(data) if data else None)
    name = store(tmp_path / "backups", "hostile", buf.getvalue())
    env = tiffin_env(tmp_path / "home")
    before = tree(tmp_path)
    restore = ["restore", "local", str(tmp_path / "backups"), name, "--into", "dir"]
    for extra in ([], ["--overwrite"]):
        r = tiffin([*restore, "--dir", str(tmp_path / "r"), *extra], env, expect=None)
        if extra and case == REPLACED:  # the file replaces the archive's own symlink
            assert r.returncode == 0, r.stderr
            assert (tmp_path / "r/data/victim").read_bytes() == b"overwritten"
        else:
            assert r.returncode == 1, (r.stdout, r.stderr)
            assert r.stderr.startswith("tiffin: refusing "), r.stderr
            # A refused restore leaves no link that leads out of the folder.
            for link in (p for p in (tmp_path / "r").rglob("*") if p.is_symlink()):
                assert (tmp_path / "r") in link.resolve().parents, link
        after = {k: v for k, v in tree(tmp_path).items() if not k.startswith(("r/", "home/"))}
        assert after == before, set(after) ^ set(before)
    assert (outside / "victim.txt").read_bytes() == b"precious"


ESCAPES = {
    "restore NAME ../": ["restore", "local", "{target}", "../outside/{name}", "--output", "{out}"],
    "restore NAME absolute": [
        "restore",
        "local",
        "{target}",
        "{outside}/{name}",
        "--output",
        "{out}",
    ],
    "restore URL NAME ../": [
        "restore",
        "file://{target}",
        "../outside/{name}",
        "--output",
        "{out}",
    ],
    "restore NAME ..": ["restore", "local", "{target}", "..", "--output", "{out}"],
    "restore NAME a/b": [
        "restore",
        "local",
        "{target}",
        "sub/{name}",
        "--into",
        "dir",
        "--dir",
        "{out}",
    ],
    "local PATH ../": ["backup", "data", "local", "{target}", "../outside", "--dir", "{data}"],
    "local PATH a/../../": [
        "backup",
        "data",
        "local",
        "{target}",
        "sub/../../outside",
        "--dir",
        "{data}",
    ],
    "file URL /../": ["backup", "data", "file://{target}/../outside", "--dir", "{data}"],
    "file URL %2e%2e": ["backup", "data", "file://{target}/%2e%2e/outside", "--dir", "{data}"],
    "FTP PATH ../": ["backup", "data", "ftp", "u:p@127.0.0.1:9", "../../etc", "--dir", "{data}"],
    "SFTP URL /~/../": ["backup", "data", "sftp://u@127.0.0.1:9/~/../../etc", "--dir", "{data}"],
    "S3 PATH ../": ["backup", "data", "s3", "bucket", "a/../../b", "--dir", "{data}"],
    "--label ../": [
        "backup",
        "data",
        "local",
        "{target}",
        "--label",
        "../outside",
        "--dir",
        "{data}",
    ],
}


@tried(
    "hostile",
    "A NAME, PATH or label that tries to leave the target's folder",
    "`..`, `/` and absolute segments in restore's NAME (seed and URL forms), in backup's PATH "
    "(local, FTP, SSH, S3; plain and %-encoded in URLs) and in `--label`; a real backup lies "
    "beside the target folder for `../` to reach",
    "exit 2 before anything is contacted, one sentence (`tiffin: …`); nothing outside the "
    "target folder is read, created or written",
)
@pytest.mark.parametrize("case", list(ESCAPES))
def test_names_and_paths_cannot_leave_the_target_folder(case: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("x")
    env = tiffin_env(tmp_path / "home")
    outside = tmp_path / "outside"
    name = store(outside, "beside", tar_of({"data/f": b"x"}))
    target = tmp_path / "target"
    target.mkdir()
    before = tree(tmp_path)
    fill = {"target": str(target), "outside": str(outside), "name": name, "data": str(data)}
    argv = [a.format(out=tmp_path / "restored", **fill) for a in ESCAPES[case]]
    r = tiffin(argv, env, expect=2)
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("tiffin: "), r.stderr
    assert tree(tmp_path) == before
    assert not (tmp_path / "restored").exists()


LIES: dict[str, Callable[[dict[str, Any]], object]] = {
    "not JSON": lambda m: b"{this is not json",
    "truncated": lambda m: json.dumps(m).encode()[:40],
    "a JSON list": lambda m: b"[1, 2, 3]",
    "size lies": lambda m: {**m, "size": m["size"] + 1},
    "sha256 lies": lambda m: {**m, "sha256": hashlib.sha256(b"other").hexdigest()},
    "names another backup": lambda m: {**m, "name": "other_2026-01-01_00:00:00_UTC.data.tar"},
    "size is not a number": lambda m: {**m, "size": "big"},
    "negative size": lambda m: {**m, "size": -1},
    "missing sha256": lambda m: {k: v for k, v in m.items() if k != "sha256"},
}


@tried(
    "hostile",
    "A manifest that is not JSON, or lies",
    "a backup is stored with a true manifest, then the manifest replaced: not JSON, "
    "truncated, a list, a size or sha256 that does not match, another backup's name, a size "
    "that is no number or negative, no sha256; `tiffin restore` to a file and into a folder",
    "exit 1 with one clear sentence naming the manifest or the mismatch; no output file, "
    "nothing restored",
)
@pytest.mark.parametrize("lie", list(LIES))
def test_a_manifest_that_is_not_json_or_lies_is_rejected(lie: str, tmp_path: Path) -> None:
    env = tiffin_env(tmp_path / "home")
    out = tmp_path / "b"
    name = store(out, "liar", tar_of({"data/f": os.urandom(30_000)}))
    path = out / (name + ".manifest.json")
    told = LIES[lie](json.loads(path.read_text()))
    path.write_bytes(told if isinstance(told, bytes) else json.dumps(told).encode())
    for where in (
        ["--output", str(tmp_path / "o.tar")],
        ["--into", "dir", "--dir", str(tmp_path / "r")],
    ):
        r = tiffin(["restore", "local", str(out), name, *where], env, expect=1)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "manifest" in r.stderr or "sha256" in r.stderr, r.stderr
    assert not (tmp_path / "o.tar").exists() and not (tmp_path / "o.tar.partial").exists()
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


@tried(
    "hostile",
    "A TLS certificate that no trusted CA signed (FTPS, SMTP)",
    "an FTPS server and an SMTP server with STARTTLS present a certificate of the tests' own "
    "CA, which the run does not trust (no SSL_CERT_FILE); then the same run with `--insecure`",
    "FTPS: exit 1, `Backup NAME FAILED: the FTPS server's certificate … cannot be trusted …: "
    "add --insecure only if you trust it`; SMTP: the backup is kept, the mail refused and said "
    "so; with `--insecure` both go through",
)
@pytest.mark.parametrize("kind", ["ftps", "smtp"])
def test_an_untrusted_certificate_is_refused_unless_insecure(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("x")
    env = tiffin_env(tmp_path / "home")
    if kind == "ftps":
        srv = request.getfixturevalue("ftps_server")
        where = f"{srv.user}:{srv.password}@{srv.host}:{srv.port}"
        args = ["backup", "data", "ftps", where, f"tls-{uuid.uuid4().hex[:8]}", "--dir", str(data)]
        r = tiffin(args, env, expect=1)
        assert "certificate" in r.stderr and "--insecure" in r.stderr, r.stderr
        assert r.stderr.startswith("Backup ") and " FAILED: " in r.stderr
        tiffin([*args, "--insecure"], env)
        return
    srv = request.getfixturevalue("smtp_tls_server")
    user, password = srv.user, srv.password
    to = f"tls-{uuid.uuid4().hex[:8]}@example.org"
    env["TIFFIN_SMTP_URL"] = f"smtp+starttls://{user}:{password}@127.0.0.1:{srv.port}"
    args = ["backup", "data", "local", str(tmp_path / "b"), "--dir", str(data), "--email", to]
    r = tiffin(args, env)
    assert f"could not send the report to {to}" in r.stderr and "certificate" in r.stderr
    assert not any(to in str(m["To"]) for m in srv.messages())
    time.sleep(1.1)  # a new backup name
    tiffin([*args, "--insecure"], env)
    deadline = time.monotonic() + 15
    while not any(to in str(m["To"]) for m in srv.messages()):
        assert time.monotonic() < deadline, "the mail never arrived"
        time.sleep(0.1)

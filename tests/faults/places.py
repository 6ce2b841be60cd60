"""Every target kind as a user names it on the command line, with a view of what its real
server stores: the files of the folder (local, FTP, SSH) or the objects and unfinished
multipart uploads of the bucket (S3), read behind tiffin's back."""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.helpers import tiffin
from tests.servers.base import Server
from tests.servers.env import tiffin_env

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KINDS = ("local", "ftp", "ftps", "sftp", "s3", "s3multi")
REMOTE_KINDS = KINDS[1:]
MANIFEST = ".manifest.json"
PARTIAL = ".partial"


@dataclass
class Place:
    """One target in a folder of its own: `args` for the command line (seed form), `url` for
    list/prune, `env` for tiffin, and `server` the real server (None for a local folder)."""

    kind: str
    args: list[str]
    url: str
    env: dict[str, str]
    server: Server | None = None
    folder: Path | None = None  # the folder on this machine's disk (local, FTP, SSH)
    s3: S3Client | None = None
    bucket: str = ""
    prefix: str = ""
    # Bytes to dump before the upload is surely under way: S3 sends a first part of 8 MiB.
    midway: int = 4 << 20

    def stored(self) -> dict[str, int]:
        """Return every file or object in the folder (S3 chunks as NAME/NAME.00): name to size."""
        if self.folder is not None:
            if not self.folder.exists():
                return {}
            return {p.name: p.stat().st_size for p in self.folder.iterdir()}
        assert self.s3 is not None
        found: dict[str, int] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + "/"
        ):
            for obj in page.get("Contents", ()):
                found[obj["Key"][len(self.prefix) + 1 :]] = obj["Size"]
        return found

    def uploads(self) -> list[str]:
        """Return the keys of the unfinished multipart uploads (S3; always [] elsewhere)."""
        if self.s3 is None:
            return []
        page = self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix + "/")
        return [u["Key"] for u in page.get("Uploads", ())]

    def in_progress(self) -> bool:
        """Whether an upload has begun: a non-empty NAME.partial, an S3 multipart upload, or
        a first s3multi chunk."""
        if self.folder is not None:
            return any(n.endswith(PARTIAL) and s > 0 for n, s in self.stored().items())
        return bool(self.uploads() or self.stored())

    def published(self) -> list[str]:
        """Return what is stored under a final name or as a manifest (leftovers excluded)."""
        return sorted(n for n in self.stored() if not n.endswith(PARTIAL))

    def listing(self) -> list[dict[str, Any]]:
        """Return `tiffin list --json` of the folder."""
        r = tiffin(["list", self.url, "--json"], self.env, timeout=60)
        items: list[dict[str, Any]] = json.loads(r.stdout)
        return items

    def assert_clean(self) -> None:
        """Nothing under a final name, no manifest, no leftover, no unfinished upload."""
        assert self.stored() == {}, self.stored()
        assert self.uploads() == []

    def assert_nothing_published(self) -> None:
        """Nothing under a final name and no manifest; whatever is left (a NAME.partial, the
        chunks NAME/NAME.NN of s3multi, an S3 upload) is listed as incomplete."""
        assert [n for n in self.published() if "/" not in n] == [], self.stored()
        items = self.listing()
        assert not [i for i in items if i["complete"]], items
        assert len(items) == len(
            {n.split("/")[0].removesuffix(PARTIAL) for n in self.stored()}
            | {u.split("/")[-1] for u in self.uploads()}
        ), (items, self.stored(), self.uploads())


def _ssh_home(home: Path, server: Any) -> None:
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    server.write_known_hosts(ssh / "known_hosts")
    key = ssh / "id_ed25519"
    key.write_bytes(Path(server.client_key).read_bytes())
    key.chmod(0o600)


def make_place(kind: str, request: pytest.FixtureRequest, home: Path) -> Place:
    """Given a kind, the test's request and a fresh HOME, return a Place on that kind's
    session server (started on first use), in a folder no other test uses."""
    folder = f"faults-{uuid.uuid4().hex[:8]}"
    env = tiffin_env(home)
    if kind == "local":
        tmp: Path = request.getfixturevalue("tmp_path")
        out = tmp / "backups"
        return Place(kind, ["local", str(out)], f"file://{out}", env, folder=out)
    if kind in ("ftp", "ftps"):
        srv = request.getfixturevalue("ftp_server" if kind == "ftp" else "ftps_server")
        if srv.ca_file is not None:
            env["SSL_CERT_FILE"] = str(srv.ca_file)
        where = f"{srv.user}:{srv.password}@{srv.host}:{srv.port}"
        url = f"{kind}://{where}/~/{folder}"
        return Place(kind, [kind, where, folder], url, env, srv, folder=srv.root / folder)
    if kind == "sftp":
        srv = request.getfixturevalue("sshd")
        _ssh_home(home, srv)
        where = f"{srv.user}@{srv.host}:{srv.port}"
        url = f"sftp://{where}/~/{folder}"
        return Place(kind, ["ssh", where, folder], url, env, srv, folder=srv.home / folder)
    srv = request.getfixturevalue("s3_server")
    bucket = srv.make_bucket(f"faults-{uuid.uuid4().hex[:12]}")
    env.update(srv.env())
    extra = ["--chunk-size", "1M"] if kind == "s3multi" else []
    return Place(
        kind,
        [kind, bucket, folder, *extra],
        f"{kind}://{bucket}/{folder}",
        env,
        srv,
        s3=srv.client(),
        bucket=bucket,
        prefix=folder,
        midway=(12 if kind == "s3" else 4) << 20,
    )


@contextlib.contextmanager
def tmpfs(size: str = "2m", uid: int = 0) -> Iterator[Path]:
    """A small tmpfs of SIZE owned by UID: a real disk that fills up."""
    mnt = Path(tempfile.mkdtemp(prefix="tiffin-full-"))
    opts = f"size={size},mode=0755,uid={uid}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        mnt.rmdir()

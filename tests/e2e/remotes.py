"""A remote target of each kind in a folder of its own, named as a user would name it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers.env import tiffin_env


@dataclass
class Remote:
    """One remote target in a folder of its own, as a user would name it."""

    how: str
    where: str
    path: str
    url: str
    env: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)

    def seed(self) -> list[str]:
        return [self.how, self.where, self.path, *self.extra]

    def as_url(self) -> list[str]:
        return [self.url, *self.extra]


def make_remote(kind: str, request, tmp_path) -> Remote:
    """A folder of its own at a fresh target of KIND (ftp, ftps, sftp, s3, s3multi)."""
    folder = f"e2e-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    env = tiffin_env(home)
    if kind in ("ftp", "ftps"):
        srv = request.getfixturevalue("ftp_server" if kind == "ftp" else "ftps_server")
        if kind == "ftps":
            env["SSL_CERT_FILE"] = str(srv.ca_file)
        hp = f"{srv.host}:{srv.port}"
        return Remote(
            kind,
            f"{srv.user}:{srv.password}@{hp}",
            folder,
            f"{kind}://{srv.user}:{srv.password}@{hp}/~/{folder}",
            env,
        )
    if kind == "sftp":
        srv = request.getfixturevalue("sshd")
        srv.write_known_hosts(home / ".ssh" / "known_hosts")
        key = home / ".ssh" / "id_ed25519"
        key.write_bytes(Path(srv.client_key).read_bytes())
        key.chmod(0o600)
        hp = f"{srv.host}:{srv.port}"
        return Remote("ssh", f"{srv.user}@{hp}", folder, f"sftp://{srv.user}@{hp}/~/{folder}", env)
    srv = request.getfixturevalue("s3_server")
    bucket = f"ramen-backups-{uuid.uuid4().hex[:6]}"
    srv.make_bucket(bucket)
    env.update(srv.env())
    extra = ["--chunk-size", "1M"] if kind == "s3multi" else []
    return Remote(kind, bucket, folder, f"{kind}://{bucket}/{folder}", env, extra)

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tiffin.errors import UsageError
from tiffin.job import TargetURL
from tiffin.options import parse_size
from tiffin.targets.where import parse_target, parse_url


def test_seed_ftp_form_with_password():
    t = parse_target("ftp", "ramenbackups:chowmein@ftp.noodles.com")
    assert (t.kind, t.user, t.password, t.host, t.port, t.path) == (
        "ftp",
        "ramenbackups",
        "chowmein",
        "ftp.noodles.com",
        None,
        "",
    )
    assert "chowmein" not in t.redacted() and "chowmein" not in repr(t)


def test_password_with_at_and_colon():
    t = parse_target("ftp", "u:p@ss:w@host:2121", "backups")
    assert (t.user, t.password, t.host, t.port, t.path) == ("u", "p@ss:w", "host", 2121, "backups")


def test_ssh_relative_and_absolute_paths():
    assert parse_target("ssh", "b@vps:2222", "backups/sql").path == "backups/sql"
    assert parse_target("ssh", "b@vps", "/srv/b").path == "/srv/b"
    assert parse_target("ssh", "b@vps").kind == "sftp"


def test_urls():
    assert parse_url("sftp://u@h:2222/srv/b") == TargetURL("sftp", "h", 2222, "u", None, "/srv/b")
    assert parse_url("sftp://u@h/~/backups").path == "backups"
    assert parse_url("ssh://u@h").path == ""
    assert parse_url("s3://bucket/a/b/") == TargetURL("s3", "bucket", path="a/b")
    assert parse_url("s3multi://bucket").kind == "s3multi"
    assert parse_url("file:///var/backups") == TargetURL("local", path="/var/backups")
    t = parse_url("ftps://u:s%40cret@h:21/x")
    assert t.password == "s@cret" and "cret" not in t.redacted()


def test_local_path_joins():
    assert parse_target("local", "/var/backups", "nightly").path == "/var/backups/nightly"


@pytest.mark.parametrize(
    ("how", "where", "path"),
    [
        ("tape", "x", None),
        ("ftp", "nohost", None),
        ("s3", "", None),
        ("ssh", "u:pw@h", None),
        ("local", "/b", "../../etc"),
        ("ftp", "u@h:notaport", None),
        ("ftp", "u@h:70000", None),
    ],
)
def test_malformed_targets_are_usage_errors(how, where, path):
    with pytest.raises(UsageError):
        parse_target(how, where, path)


@pytest.mark.parametrize(
    "url", ["gopher://x", "sftp://h/x", "file://remote/x", "ftp://u@h:99999/", "s3:///nobucket"]
)
def test_malformed_urls(url):
    with pytest.raises(UsageError):
        parse_url(url)


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("4G", 4 << 30),
        ("4GiB", 4 << 30),
        ("1M", 1 << 20),
        ("1MiB", 1 << 20),
        ("123", 123),
        ("5k", 5120),
        ("2T", 2 << 40),
    ],
)
def test_sizes(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "0", "4X", "-1", "1.5G"])
def test_bad_sizes(text):
    with pytest.raises(UsageError):
        parse_size(text)


def test_a_local_backup_imports_no_remote_client(tmp_path: Path) -> None:
    """boto3 and paramiko cost 0.45 s of CPU and 35 MB to import: a run to a local folder
    must not load them."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("x")
    code = (
        "import sys\n"
        "from tiffin.cli import main\n"
        f"rc = main(['backup', 'data', 'local', '{tmp_path}/out', '--dir', '{tmp_path}/data'])\n"
        "assert rc == 0, rc\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'paramiko') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert len(list((tmp_path / "out").glob("*.tar.gz"))) == 1

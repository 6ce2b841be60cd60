"""Targets by kind: the one registry of the family. Every list of HOWs and URL schemes a user
reads comes from KINDS. A target's module (and the client library behind it: boto3, paramiko)
is imported only when a target of that kind is made, so a run to a local folder does not pay
0.45 s of CPU and 35 MB of memory for the clients it does not use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tiffin.errors import UsageError
from tiffin.job import TargetOptions, TargetURL
from tiffin.targets.base import Entry, Stored, Target

TargetClass = Callable[[TargetURL, TargetOptions], Target]


def _local() -> TargetClass:
    from tiffin.targets.local import LocalTarget

    return LocalTarget


def _ftp() -> TargetClass:
    from tiffin.targets.ftp import FTPTarget

    return FTPTarget


def _sftp() -> TargetClass:
    from tiffin.targets.sftp import SFTPTarget

    return SFTPTarget


def _s3() -> TargetClass:
    from tiffin.targets.s3 import S3Target

    return S3Target


def _s3multi() -> TargetClass:
    from tiffin.targets.s3multi import S3MultiTarget

    return S3MultiTarget


@dataclass(frozen=True)
class TargetKind:
    """One kind of target: the words for it after WHAT (HOW), its URL schemes, and its class,
    imported when first asked for."""

    kind: str
    load: Callable[[], TargetClass]
    hows: tuple[str, ...]
    schemes: tuple[str, ...]


KINDS: tuple[TargetKind, ...] = (
    TargetKind("local", _local, ("local",), ("file",)),
    TargetKind("ftp", _ftp, ("ftp",), ("ftp",)),
    TargetKind("ftps", _ftp, ("ftps",), ("ftps",)),
    TargetKind("sftp", _sftp, ("ssh", "sftp"), ("sftp", "ssh")),
    TargetKind("s3", _s3, ("s3",), ("s3",)),
    TargetKind("s3multi", _s3multi, ("s3multi",), ("s3multi",)),
)
TARGETS: dict[str, TargetKind] = {k.kind: k for k in KINDS}
HOWS: tuple[str, ...] = tuple(how for k in KINDS for how in k.hows)
SCHEMES: dict[str, str] = {scheme: k.kind for k in KINDS for scheme in k.schemes}


def make_target(url: TargetURL, options: TargetOptions) -> Target:
    """Given a parsed target, return a connected Target. Raise TargetError if it cannot be
    reached or refuses us."""
    kind = TARGETS.get(url.kind)
    if kind is None:
        raise UsageError(f"the {url.kind} target is not available in this version of tiffin")
    return kind.load()(url, options)


@contextmanager
def connected(url: TargetURL, options: TargetOptions) -> Iterator[Target]:
    """Given a parsed target, connect to it for the length of a with block and close it on
    the way out, whatever happens in it. Raise TargetError if it cannot be reached or
    refuses us."""
    target = make_target(url, options)
    try:
        yield target
    finally:
        target.close()


__all__ = [
    "HOWS",
    "KINDS",
    "SCHEMES",
    "TARGETS",
    "Entry",
    "Stored",
    "Target",
    "connected",
    "make_target",
]

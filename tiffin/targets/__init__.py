"""Targets by kind: an explicit registry."""

from __future__ import annotations

from collections.abc import Callable

from tiffin.job import TargetOptions, TargetURL
from tiffin.targets.base import Entry, Stored, Target
from tiffin.targets.ftp import FTPTarget
from tiffin.targets.local import LocalTarget
from tiffin.targets.s3 import S3Target
from tiffin.targets.s3multi import S3MultiTarget
from tiffin.targets.sftp import SFTPTarget

TargetFactory = Callable[[TargetURL, TargetOptions], Target]

TARGETS: dict[str, TargetFactory] = {
    "local": LocalTarget,
    "ftp": FTPTarget,
    "ftps": FTPTarget,
    "sftp": SFTPTarget,
    "s3": S3Target,
    "s3multi": S3MultiTarget,
}


def make_target(url: TargetURL, options: TargetOptions) -> Target:
    """Given a parsed target, return a connected Target. Raise TargetError if it cannot be
    reached or refuses us."""
    from tiffin.errors import UsageError

    factory = TARGETS.get(url.kind)
    if factory is None:
        raise UsageError(f"the {url.kind} target is not available in this version of tiffin")
    return factory(url, options)


__all__ = ["TARGETS", "Entry", "Stored", "Target", "make_target"]

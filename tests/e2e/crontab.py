"""A stand-in `crontab` on PATH: `-l` and `-` over a file of the test's own, as Debian's does
over /var/spool/cron (so root's real crontab is never touched); every call is logged."""

from __future__ import annotations

from pathlib import Path

from tests.servers.env import tiffin_env
from tiffin.commands import cron


class Crontab:
    def __init__(self, root: Path) -> None:
        self.bindir = root / "cronbin"
        self.bindir.mkdir()
        self.file = root / "crontab.txt"
        self.log = root / "crontab.log"
        script = self.bindir / "crontab"
        script.write_text(
            "#!/bin/sh\n"
            f'echo "$*" >> {self.log}\n'
            'case "$1" in\n'
            f"  -l) if [ -f {self.file} ]; then cat {self.file}; else\n"
            '       echo "no crontab for root" >&2; exit 1; fi ;;\n'
            f"  -) cat > {self.file}.new && mv {self.file}.new {self.file} ;;\n"
            '  *) echo "usage: crontab [-l | -]" >&2; exit 1 ;;\n'
            "esac\n"
        )
        script.chmod(0o755)
        self.home = root / "home"

    def env(self, **extra: str) -> dict[str, str]:
        env = tiffin_env(self.home, **extra)
        env["PATH"] = f"{self.bindir}:{env['PATH']}"
        return env

    def text(self) -> str:
        return self.file.read_text() if self.file.exists() else ""

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def jobs(self) -> list[tuple[str, str, str]]:
        return cron.parse_crontab(self.text()).jobs()

"""The directory source builds common tar headers itself (tarfile's tobuf() was 60 % of the
writer's time): they must be byte for byte what tarfile writes, and anything a ustar block
cannot hold must still come out right (through tarfile)."""

from __future__ import annotations

import os
import random
import stat
import tarfile

from tiffin.sources import tarheader as d

KINDS = {
    stat.S_IFREG: tarfile.REGTYPE,
    stat.S_IFDIR: tarfile.DIRTYPE,
    stat.S_IFLNK: tarfile.SYMTYPE,
}


def reference(arc: str, st: os.stat_result, kind: bytes, link: str = "") -> bytes:
    info = tarfile.TarInfo(arc)
    info.type, info.linkname = kind, link
    info.mode, info.mtime = stat.S_IMODE(st.st_mode), st.st_mtime
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname, info.gname = d._uname(st.st_uid), d._gname(st.st_gid)
    info.size = st.st_size if kind == tarfile.REGTYPE else 0
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


def outcome(make, *args: object) -> bytes | str:
    try:
        return make(*args)
    except Exception as exc:
        return repr(exc)


def test_headers_are_those_tarfile_writes_on_random_entries() -> None:
    r = random.Random(1)
    odd = "abcXYZ09._-/ é\udcff日"

    def name() -> str:
        n = r.choice([1, 5, 50, 98, 99, 100, 101, 150, 300])
        return "".join(r.choice(odd if r.random() < 0.2 else "abcxyz/._-") for _ in range(n))

    for _ in range(5000):
        mode = r.choice(list(KINDS)) | r.randrange(0o10000)
        uid = r.choice([0, 1000, 65534, 8**7 - 1, 8**7, 2**32 - 2, os.getuid()])
        gid = r.choice([0, 1000, 65534, 8**7 - 1, 8**7, 2**32 - 2])
        size = r.choice([0, 1, 511, 512, 513, 8**11 - 1, 8**11, r.randrange(10**10)])
        mtime = r.choice(
            [0.0, 0.5, 1.5, -1.0, -0.4, 1.3e9, 8**11 - 0.5, 8**11 - 0.6, 8**11 + 0.0, 1e20,
             r.uniform(0, 2e9), 1764316800.123456789]
        )  # fmt: skip
        st = os.stat_result((mode, 1, 1, 1, uid, gid, size, 0, 0, 0, 0, mtime, 0))
        kind = KINDS[stat.S_IFMT(mode)] if r.random() >= 0.1 else tarfile.LNKTYPE
        link = name() if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
        arc = name() + ("/" if r.random() < 0.05 else "")
        want = outcome(reference, arc, st, kind, link)
        assert outcome(d._header, arc, st, kind, link) == want, (arc, st, kind, link)

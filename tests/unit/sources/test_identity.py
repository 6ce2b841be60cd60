"""A source's identity (tiffin/sources/identity.py): it names the source, never a secret,
and its key is stable for one source and differs between two."""

from __future__ import annotations

import json
import os

from hypothesis import given
from hypothesis import strategies as st

from tiffin.job import DBConn, SourceSpec
from tiffin.sources.identity import identity, key, key_of

names = st.text(st.characters(blacklist_characters="\0"), min_size=1)  # lone surrogates too
SECRET = "\u2603SECRET"  # a password marker no generated name holds


@given(
    what=st.sampled_from(["mysql", "pgsql"]),
    host=names,
    port=st.none() | st.integers(1, 65535),
    user=names,
    password=names,
    socket=st.none() | names,
    databases=st.lists(names, max_size=4),
)
def test_a_server_identity_never_holds_the_password_or_user(
    what: str,
    host: str,
    port: int | None,
    user: str,
    password: str,
    socket: str | None,
    databases: list[str],
) -> None:
    secret = SECRET + password
    conn = DBConn(host=host, port=port, user=SECRET + user, password=secret, socket=socket)
    ident = identity(SourceSpec(what, conn=conn, databases=tuple(databases)))
    text = json.dumps(ident, ensure_ascii=False)
    assert SECRET not in text
    assert key(ident) == key(json.loads(text))  # stable through the manifest's JSON
    assert key_of({"identity": ident}) == key(ident)


@given(a=names, b=names, excludes=st.lists(names, max_size=3))
def test_two_folders_have_two_keys_and_one_folder_one(a: str, b: str, excludes: list[str]) -> None:
    one = identity(SourceSpec("data", dir=a, excludes=tuple(excludes)))
    again = identity(SourceSpec("data", dir=a, excludes=tuple(reversed(excludes))))
    other = identity(SourceSpec("data", dir=b, excludes=tuple(excludes)))
    assert key(one) == key(again)
    same_folder = os.path.abspath(os.path.expanduser(a)) == os.path.abspath(os.path.expanduser(b))
    assert (key(one) == key(other)) == same_folder


def test_a_manifest_without_identity_has_no_key() -> None:
    assert key_of({}) is None and key_of(None) is None and key_of({"identity": "x"}) is None

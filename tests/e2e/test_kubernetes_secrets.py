"""schedule --kubernetes never puts a secret's value in the CronJob, whatever it holds."""

from __future__ import annotations

import io
import json
import os
import urllib.parse
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.test_kubernetes import model
from tests.faults.tried import tried
from tiffin import cli

SECRET = st.text(
    st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\x85\u2028\u2029")
    | st.sampled_from(['"', "'", "\\", "$", "`", "\t", "\x1b", "%", "#", ":", "{", "}", "&", "*"]),
    min_size=1,
    max_size=24,
).map(lambda s: f"Zq{s}9!")


@tried(
    "secret",
    "Kubernetes CronJob: secrets in every form schedule takes",
    "hypothesis (40 examples) draws secrets of any Unicode with quotes, backslashes, $, "
    "YAML and shell specials for TIFFIN_DB_PASSWORD, AWS_SECRET_ACCESS_KEY, an FTP password "
    "in the target URL and a --password-file's content, and prints the CronJob",
    "no secret appears in the YAML, raw, JSON-escaped or URL-encoded; each reaches the pod "
    "as a secretKeyRef or a secret volume item",
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(db=SECRET, aws=SECRET, ftp=SECRET, infile=SECRET)
def test_no_secret_value_reaches_the_yaml(
    db: str, aws: str, ftp: str, infile: str, tmp_path: Path
) -> None:
    pwfile = tmp_path / "pw"
    pwfile.write_text(infile + "\n")
    saved = dict(os.environ)
    os.environ.update(TIFFIN_DB_PASSWORD=db, AWS_SECRET_ACCESS_KEY=aws, HOME=str(tmp_path))
    out, err = io.StringIO(), io.StringIO()
    texts = []
    try:
        for argv in (
            ["pgsql", "s3", "b", "--password-file", str(pwfile)],
            ["mysql", f"ftp://u:{urllib.parse.quote(ftp, safe='')}@127.0.0.1/b"],
        ):
            out.seek(0)
            out.truncate()
            with redirect_stdout(out), redirect_stderr(err):
                code = cli.main(["schedule", *argv, "--kubernetes"])
            assert code == 0, err.getvalue()
            texts.append(out.getvalue())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    for text in texts:
        model(text.split("---\n", 1)[1])
        for secret in (db, aws, ftp, infile):
            for form in (secret, json.dumps(secret)[1:-1], urllib.parse.quote(secret, safe="")):
                assert form not in text, (form, text)
    refs = [
        e["valueFrom"]["secretKeyRef"]["key"]
        for e in yaml.safe_load(texts[1])["spec"]["jobTemplate"]["spec"]["template"]["spec"][
            "containers"
        ][0]["env"]
        if "valueFrom" in e
    ]
    assert "TIFFIN_FTP_PASSWORD" in refs

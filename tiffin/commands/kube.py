"""tiffin schedule --kubernetes: the same backup as a Kubernetes batch/v1 CronJob (SPEC §8),
printed, for `kubectl apply -f -`. Nothing on this machine is changed.

The pod runs tiffin's image (Containerfile) with the command line a crontab line would run,
but for paths: a password file and an SSH key come from the job's Secret, mounted read-only,
and so does known_hosts for an SSH target. Every secret reaches the pod by reference to that
Secret (secretKeyRef, a secret volume), never by value: the YAML holds names of keys only.
No retry can publish twice: backoffLimit 0, restartPolicy Never, concurrencyPolicy Forbid.

The YAML is written here, not by a library: block style, every scalar a JSON string
(ASCII, escaped), which YAML reads as the same string, so that no value can break the
document's structure or become a tag, an anchor or another type.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from typing import Any

from tiffin import __version__
from tiffin.commands.schedule import Plan
from tiffin.errors import UsageError
from tiffin.job import BackupJob

DEFAULT_IMAGE = f"tiffin:{__version__}"  # podman build -t tiffin:VERSION -f Containerfile .
MOUNT_DIR = "/var/run/secrets/tiffin"
HOME = "/home/tiffin"  # the image's user's home (Containerfile)
UID = 10001
FILE_OPTIONS = {"--password-file": "password-file", "--ssh-key": "ssh-key"}
STARTING_DEADLINE = 3600  # a run missed by more than an hour waits for the next day
HISTORY = 3
# Variables that name files of this machine (CA bundles): the image has its own.
LOCAL_PATHS = frozenset({"SSL_CERT_FILE", "SSL_CERT_DIR", "AWS_CA_BUNDLE"})
# A key written bare: the document's own keys, none of which YAML 1.1 reads as another type.
_BARE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*")
_NOT_BARE = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}")


def refuse(job: BackupJob, values: dict[str, Any]) -> None:
    """Given a backup job and its option values, raise UsageError if it cannot run in a pod
    as asked: a folder or file of this machine, a local target, a Unix socket, values that
    Kubernetes does not accept as names."""
    if job.source.what in ("data", "sqlite"):
        raise UsageError(
            f"--kubernetes runs database jobs: a pod cannot read this machine's {job.source.what} "
            "(schedule it here with cron or --systemd)"
        )
    if job.target.kind == "local":
        raise UsageError(
            "--kubernetes needs a target outside the pod (s3, sftp, ftp): a local folder "
            "would vanish with it"
        )
    if job.source.conn.socket:
        raise UsageError("--kubernetes reaches the database over TCP: give --host, not --socket")
    if values.get("env_file"):
        raise UsageError("--kubernetes takes no --env-file: put its variables in the Secret")
    ns, secret, image = values.get("namespace"), values.get("secret"), values.get("image")
    if ns is not None and not _DNS_LABEL.fullmatch(ns):
        raise UsageError(f"--namespace {ns!r}: a namespace is lower-case letters, digits and '-'")
    if secret is not None and not _DNS_NAME.fullmatch(secret):
        raise UsageError(
            f"--secret {secret!r}: a Secret's name is lower-case letters, digits, '-' and '.'"
        )
    if image is not None and not _IMAGE.fullmatch(image):
        raise UsageError(f"--image {image!r}: give an image reference such as tiffin:1.0")


def schedule_of(plan: Plan, when: str | None) -> str:
    """Given a plan and a cron time (None: random), return the CronJob's schedule. A random
    one is drawn from the job id, so that printing it again gives the same time."""
    if when is None:
        n = int(plan.job_id, 16)
        return f"{n % 60} {n // 60 % 24} * * *"
    if when.startswith("@reboot"):
        raise UsageError("--cron @reboot: a CronJob has no reboot; give a time")
    return when


def cronjob(
    plan: Plan,
    job: BackupJob,
    when: str | None,
    namespace: str | None = None,
    secret: str | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    """Given a plan (from plan_backup), its job, a cron time and the Kubernetes names, return
    the CronJob as a document. Raise UsageError if an argument cannot be put in a pod."""
    name = f"tiffin-{plan.job_id}"
    secret = secret or name
    argv = list(plan.argv[plan.argv.index("backup") :])
    items: list[dict[str, Any]] = []
    for i, word in enumerate(argv[:-1]):
        key = FILE_OPTIONS.get(word)
        if key:  # its file comes from the Secret, mounted read-only
            argv[i + 1] = f"{MOUNT_DIR}/{key}"
            items.append({"key": key, "path": key})
    for word in argv:
        if any(c in word for c in "\0") or any("\ud800" <= c <= "\udfff" for c in word):
            raise UsageError(f"{word!r} cannot be given to Kubernetes: it is not UTF-8 text")
    if job.target.kind == "sftp" and "--ssh-key" not in argv:  # no agent in a pod
        argv += ["--ssh-key", f"{MOUNT_DIR}/ssh-key"]
        items.append({"key": "ssh-key", "path": "ssh-key"})
    env: list[dict[str, Any]] = [{"name": "HOME", "value": HOME}]
    env += [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": k}}}
        for k in sorted(plan.env)
        if k not in LOCAL_PATHS
    ]
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if job.target.kind == "sftp":
        items.append({"key": "known_hosts", "path": "known_hosts"})
        mounts.append(
            {
                "name": "secrets",
                "mountPath": f"{HOME}/.ssh/known_hosts",
                "subPath": "known_hosts",
                "readOnly": True,
            }
        )
    if items:
        mounts.insert(0, {"name": "secrets", "mountPath": MOUNT_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "secrets",
                "secret": {"secretName": secret, "defaultMode": 0o440, "items": items},
            }
        )
    labels = {"app.kubernetes.io/name": "tiffin", "tiffin/job-id": plan.job_id}
    container: dict[str, Any] = {
        "name": "tiffin",
        "image": image or DEFAULT_IMAGE,
        "command": ["tiffin"],
        "args": argv,
        "env": env,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if mounts:
        container["volumeMounts"] = mounts
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
        },
        "containers": [container],
    }
    if volumes:
        pod["volumes"] = volumes
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata,
        "spec": {
            "schedule": schedule_of(plan, when),
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE,
            "successfulJobsHistoryLimit": HISTORY,
            "failedJobsHistoryLimit": HISTORY,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 0,
                    "template": {"metadata": {"labels": labels}, "spec": pod},
                },
            },
        },
    }


def secret_hint(
    doc: dict[str, Any], plan: Plan, job: BackupJob, namespace: str | None
) -> list[str]:
    """Return comment lines saying how to make the Secret the CronJob refers to: the names of
    its keys, with the values taken from the user's own shell, never from here."""
    pod = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    refs = [e["valueFrom"]["secretKeyRef"] for e in pod["containers"][0]["env"] if "valueFrom" in e]
    items = [i["key"] for v in pod.get("volumes", ()) for i in v["secret"]["items"]]
    if not refs and not items:
        return ["# This job needs no Secret."]
    name = (refs or [{"name": pod["volumes"][0]["secret"]["secretName"]}])[0]["name"]
    ns = f" --namespace {namespace}" if namespace else ""
    words = [f'--from-literal={r["key"]}="${r["key"]}"' for r in refs]
    for key in items:
        words.append(f"--from-file={key}={_file_of(key, plan, job)}")
    keys = ", ".join([*(r["key"] for r in refs), *items])
    return [
        f"# The job's secrets are in the Secret {name} (keys: {keys});",
        "# make it from your shell's own values before applying this:",
        f"#   kubectl create secret generic {name}{ns} \\",
        *(f"#     {w} \\" for w in words[:-1]),
        f"#     {words[-1]}",
    ]


def _file_of(key: str, plan: Plan, job: BackupJob) -> str:
    """Return where the file for KEY is on this machine, quoted for a shell, when it can
    stand in a comment line; else a placeholder."""
    if key == "known_hosts":
        return "$HOME/.ssh/known_hosts"
    argv = list(plan.argv)
    flag = next(f for f, k in FILE_OPTIONS.items() if k == key)
    if flag not in argv:
        return "$HOME/.ssh/id_ed25519"
    path = argv[argv.index(flag) + 1]
    return shlex.quote(path) if path and path.isascii() and path.isprintable() else "FILE"


def render(doc: Any, comments: Sequence[str] = ()) -> str:
    """Given a document of dicts, lists, strings, numbers and booleans, return it as YAML:
    block style, keys and strings as JSON strings (ASCII), preceded by COMMENTS."""
    lines = [*comments, "---", *_block(doc, 0)]
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    raise TypeError(f"no YAML for {type(value).__name__}")


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        out: list[str] = []
        for key, item in value.items():
            bare = _BARE_KEY.fullmatch(key) and key.lower() not in _NOT_BARE
            head = f"{pad}{key if bare else _scalar(str(key))}:"
            if isinstance(item, dict | list) and item:
                out += [head, *_block(item, indent + 2)]
            else:
                out.append(f"{head} {_inline(item)}")
        return out
    if isinstance(value, list):
        if not value:
            return [pad + "[]"]
        out = []
        for item in value:
            if isinstance(item, dict | list) and item:
                inner = _block(item, indent + 2)
                out.append(f"{pad}- {inner[0].lstrip()}")
                out += inner[1:]
            else:
                out.append(f"{pad}- {_inline(item)}")
        return out
    return [pad + _scalar(value)]


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)

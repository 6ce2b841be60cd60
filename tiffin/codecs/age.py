"""age encryption (pyrage), streamed: readable by plain `age -d`, in bounded memory.

pyrage's encrypt_io / decrypt_io read a file object and write to another until the end. They
run here in a thread of their own whose writer hands the output, in blocks of up to BLOCK
bytes, through a queue of DEPTH blocks to the reader returned: the stream never waits whole
in memory, and the stage upstream and the one downstream run at the same time.
"""

from __future__ import annotations

import io
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeAlias

import pyrage

from tiffin.engine.streams import BLOCK, IterReader, Reader, buffered
from tiffin.errors import IntegrityError, UsageError

DEPTH = 4
# pyrage ships no type stubs: its x25519/ssh Recipient and Identity objects are opaque here.
Recipient: TypeAlias = Any
Identity: TypeAlias = Any
SSH_TYPES = ("ssh-ed25519", "ssh-rsa")


def parse_recipient(text: str) -> Recipient:
    """Given an age public key (age1...) or an SSH public key line (ssh-ed25519 AAAA... or
    ssh-rsa AAAA..., comment allowed), return the recipient. Raise UsageError if it is none."""
    text = text.strip()
    try:
        if text.startswith("age1"):
            recipient: Recipient = pyrage.x25519.Recipient.from_str(text)
            return recipient
        if text.split(" ", 1)[0] in SSH_TYPES:
            recipient = pyrage.ssh.Recipient.from_str(text)
            return recipient
    except pyrage.RecipientError as exc:
        raise UsageError(f"--encrypt-to {_short(text)!r} is not a valid key ({exc})") from None
    raise UsageError(
        f"--encrypt-to {_short(text)!r} is not an age public key (age1...) or an SSH public key "
        "(ssh-ed25519 ... or ssh-rsa ...)"
    )


def check_recipients(recipients: Sequence[str]) -> tuple[str, ...]:
    """Given --encrypt-to values, return them stripped. Raise UsageError, naming the first that
    is not a usable age or SSH public key."""
    for text in recipients:
        parse_recipient(text)
    return tuple(r.strip() for r in recipients)


def load_identities(path: str) -> list[Identity]:
    """Given an identity file (age's AGE-SECRET-KEY-1... lines, # comments allowed, or an
    unencrypted OpenSSH private key), return its identities. Raise UsageError if the file
    cannot be read or holds none."""
    where = os.path.expanduser(path)
    try:
        with open(where, "rb") as f:
            raw = f.read(1 << 20)
    except OSError as exc:
        raise UsageError(f"cannot read the identity file {path}: {exc.strerror}") from None
    if b"-----BEGIN" in raw:
        try:
            return [pyrage.ssh.Identity.from_buffer(raw)]
        except pyrage.IdentityError as exc:
            locked = "decrypt" in str(exc)
            hint = " (remove its passphrase, or use an age identity)" if locked else ""
            raise UsageError(f"the SSH key {path} cannot be used: {exc}{hint}") from None
    found: list[Identity] = []
    for n, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            found.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise UsageError(
                f"line {n} of the identity file {path} is not an age secret key "
                "(AGE-SECRET-KEY-1...)"
            ) from None
    if not found:
        raise UsageError(f"the identity file {path} holds no age secret key or SSH private key")
    return found


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


class AgeCodec:
    """Encrypts to RECIPIENTS, or decrypts with the identities in IDENTITY_FILE."""

    name = "age"
    suffix = ".age"

    def __init__(self, recipients: Sequence[str] = (), identity_file: str | None = None) -> None:
        self._recipients = [parse_recipient(r) for r in recipients]
        self._identity_file = identity_file
        self._identities = load_identities(identity_file) if identity_file else []

    def encode(self, reader: Reader) -> Reader:
        if not self._recipients:
            raise UsageError("age encryption needs a recipient: --encrypt-to RECIPIENT")
        recipients = self._recipients

        def work(src: Any, dst: Any) -> None:
            pyrage.encrypt_io(src, dst, recipients)

        return buffered(IterReader(_through(work, reader, self._explain), on_close=reader.close))

    def decode(self, reader: Reader) -> Reader:
        if not self._identities:
            raise UsageError("the backup is encrypted: give the age identity with --identity FILE")
        identities = self._identities

        def work(src: Any, dst: Any) -> None:
            pyrage.decrypt_io(src, dst, identities)

        return buffered(IterReader(_through(work, reader, self._explain), on_close=reader.close))

    def _explain(self, exc: BaseException) -> BaseException:
        """Given what pyrage raised, return the error the user reads."""
        text = str(exc)
        if isinstance(exc, pyrage.DecryptError) and "No matching keys" in text:
            return IntegrityError(
                f"the identity in {self._identity_file} cannot decrypt this backup: it is not "
                "one of the recipients it was encrypted to"
            )
        if isinstance(exc, pyrage.DecryptError | OSError):
            return IntegrityError(f"the age stream is corrupt or truncated ({text})")
        return IntegrityError(f"age encryption failed ({text})")


class _Source(io.RawIOBase):
    """READER as pyrage sees it: the first exception READER raises is kept, so that the caller
    gets it back unchanged rather than wrapped in pyrage's own error."""

    def __init__(self, reader: Reader) -> None:
        super().__init__()
        self.reader = reader
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return self.reader.read(size)
        except BaseException as exc:
            self.error = exc
            raise

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class _Stopped(Exception):
    """The reader side went away: pyrage's thread is to stop writing."""


class _Sink(io.RawIOBase):
    """pyrage's writer: gathers its small writes into blocks of BLOCK bytes on a bounded queue;
    raises _Stopped once the consumer has gone."""

    def __init__(self, q: queue.Queue[Any], stop: threading.Event) -> None:
        super().__init__()
        self.q, self.stop = q, stop
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.buf += b
        if len(self.buf) >= BLOCK:
            self.send(bytes(self.buf))
            self.buf.clear()
        return len(b)

    def send(self, item: object) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                self.q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue


_END = object()


def _through(
    work: Callable[[Any, Any], None],
    reader: Reader,
    explain: Callable[[BaseException], BaseException],
) -> Iterator[bytes]:
    """Run WORK(source, sink) in a thread; yield what it writes. An exception READER raised
    comes out unchanged; pyrage's own are passed through EXPLAIN."""
    q: queue.Queue[Any] = queue.Queue(maxsize=DEPTH)
    stop = threading.Event()
    source = _Source(reader)
    sink = _Sink(q, stop)

    def run() -> None:
        try:
            work(source, sink)
            if sink.buf:
                sink.send(bytes(sink.buf))
            sink.send(_END)
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the consumer's thread
            try:
                sink.send(exc)
            except _Stopped:
                pass

    thread = threading.Thread(target=run, name="tiffin-age", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not _END:
            if isinstance(item, BaseException):
                if source.error is not None:
                    raise source.error
                raise explain(item) from None
            yield item
    finally:
        stop.set()
        # The thread ends at its next write; one still waiting on a dead upstream is a daemon.
        thread.join(1)

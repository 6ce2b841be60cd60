"""Pipelined SFTP writes without paramiko's copies of the data.

paramiko's SFTPFile.write passes every byte through its write buffer, a request Message and a
packet, four copies before the send; at 1 GiB that is about half a second of CPU on the core
the upload shares with ssh and sshd. Here each write request is its 40-byte header, built with
struct, then the caller's bytes as they are (a memoryview slice), sent by writev where the
channel has it. The requests are numbered from paramiko's own counter, and their answers read
with its packet reader before anything else is asked, so the session stays in step."""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable

import paramiko
from paramiko.message import Message
from paramiko.sftp import CMD_STATUS, CMD_WRITE, SFTPError

IN_FLIGHT = 64  # requests sent and not yet answered before a write waits: 16 MiB of 255 KiB


class Uploader:
    """Writes to one open SFTP file handle, from offset 0 on, REQUEST bytes a request at most."""

    def __init__(self, sftp: paramiko.SFTPClient, handle: bytes, request: int) -> None:
        self.sftp, self.request = sftp, request
        self._lock: threading.Lock = getattr(sftp, "_lock")  # noqa: B009 (guards its counter)
        self.offset = 0
        self._prefix = struct.pack(">I", len(handle)) + handle
        self._waiting: set[int] = set()
        sock = sftp.sock
        self._ready: Callable[[], bool] = sock.recv_ready
        self._send: Callable[[bytes, memoryview], None] = getattr(sock, "send_all", self._send_each)

    def write(self, data: bytes) -> None:
        """Send DATA as write requests at the next offset; read the answers that came back.
        Raise OSError (the server's refusal) or the channel's error."""
        view = memoryview(data)
        for start in range(0, len(view), self.request):
            piece = view[start : start + self.request]
            with self._lock:  # the counter paramiko's own requests take theirs from
                num = self.sftp.request_number
                self.sftp.request_number += 1
            size = 1 + 4 + len(self._prefix) + 8 + 4 + len(piece)
            header = struct.pack(">IBI", size, CMD_WRITE, num) + self._prefix
            self._waiting.add(num)
            self._send(header + struct.pack(">QI", self.offset, len(piece)), piece)
            self.offset += len(piece)
            while len(self._waiting) > IN_FLIGHT or (self._waiting and self._ready()):
                self._answer()

    def finish(self) -> None:
        """Wait for the answer to every request sent. Raise as write does."""
        while self._waiting:
            self._answer()

    def _answer(self) -> None:
        kind, data = getattr(self.sftp, "_read_packet")()  # noqa: B009 (private, no stubs)
        msg = Message(data)
        num = msg.get_int()
        if num not in self._waiting:
            return  # the late answer to a request paramiko gave up on
        self._waiting.discard(num)
        if kind != CMD_STATUS:
            raise SFTPError("Expected status")
        getattr(self.sftp, "_convert_status")(msg)  # noqa: B009 (raises unless OK)

    def _send_each(self, header: bytes, piece: memoryview) -> None:
        write_all = getattr(self.sftp, "_write_all")  # noqa: B009
        write_all(header)
        write_all(piece)

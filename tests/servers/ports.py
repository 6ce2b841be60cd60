"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import os
import random
import socket
import threading

__all__ = ["free_port", "port_open"]

# Linux's ephemeral ports start at 32768: 20000-31999 are ours, 1000 a worker, 12 workers.
BASE = 20000
SPAN = 1000
WORKERS = 12

_lock = threading.Lock()
_handed_out: set[int] = set()


def _worker_ports() -> range:
    """The ports this process may hand out: BASE + SPAN x n .. for pytest-xdist worker gwN
    (n mod WORKERS), so that two workers never pick the same port. A worker that stops a
    server and starts it again on its port (a fault test) cannot find it taken by another
    worker's new server meanwhile, as it could when the kernel chose every port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    n = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    start = BASE + SPAN * (n % WORKERS)
    return range(start, start + SPAN)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now, from this worker's own range,
    below the kernel's ephemeral ports (no client socket is given one of them either).

    A port is never handed out twice by one process, so two servers started back to back
    cannot be given the same port before the first one has bound it.
    """
    ports = _worker_ports()
    offset = random.randrange(len(ports))  # separate runs on one machine rarely meet
    with _lock:
        for i in range(len(ports)):
            port = ports[(offset + i) % len(ports)]
            if port in _handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free TCP port found on {host} in {ports}")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False

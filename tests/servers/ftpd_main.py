"""pyftpdlib FTP/FTPS server for the tests: ``python ftpd_main.py --port P ...``.

Run as a child process by tests/servers/ftp.py; stops cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.servers import FTPServer


def _exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--perm", default="elradfmwMT")
    parser.add_argument("--buffer", type=int, default=1 << 20, help="data buffer bytes")
    parser.add_argument("--tls", action="store_true", help="explicit FTPS, TLS required")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args(argv)

    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    authorizer = DummyAuthorizer()
    authorizer.add_user(args.user, args.password, args.root, perm=args.perm)

    handler: type[FTPHandler]
    dtp: type[DTPHandler]
    if args.tls:
        from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler

        handler, dtp = TLS_FTPHandler, TLS_DTPHandler
        TLS_FTPHandler.certfile = args.certfile
        TLS_FTPHandler.keyfile = args.keyfile
        TLS_FTPHandler.tls_control_required = True
        TLS_FTPHandler.tls_data_required = True
    else:
        handler, dtp = FTPHandler, DTPHandler
    dtp.ac_in_buffer_size = args.buffer
    dtp.ac_out_buffer_size = args.buffer
    handler.dtp_handler = dtp
    handler.authorizer = authorizer
    handler.banner = "tiffin test ftpd ready."
    handler.auth_failed_timeout = 0.2  # default 3 s per failed login

    server = FTPServer((args.host, args.port), handler)
    server.max_cons = 256
    server.max_cons_per_ip = 0
    signal.signal(signal.SIGTERM, _exit)
    server.serve_forever(handle_exit=True)


if __name__ == "__main__":
    main()

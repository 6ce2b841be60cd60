"""Throwaway database servers that tiffin starts itself, to load untrusted dumps into.

A scratch server has its own temporary folder (data, a Unix socket in a private 0700 folder,
its temporary files), listens on no TCP port, is started and stopped by the PID tiffin
started, and is removed at the end whatever happened (use it as a context manager):

    with ScratchPostgres(major=15) as server:   # or ScratchMariaDB()
        ... server.conn (a DBConn over the socket, as the server's superuser) ...

Whatever SQL it is fed runs there, as that server's superuser, and nowhere else:
- when tiffin runs as root, the server runs as the unprivileged OS user `nobody` (never
  `postgres` or `mysql`, who own the live data); otherwise it runs as the invoking user;
- it is jailed by Linux's Landlock (tiffin/engine/scratch/jail.py): it can execute no program but
  itself (so `COPY ... TO PROGRAM` or a C function calling system() fails), create or change
  no file outside its folder (so `COPY ... TO '/tmp/x'`, `SELECT ... INTO OUTFILE` or a
  general_log_file elsewhere fail), and bind or connect no TCP port. On a kernel without
  Landlock the server runs unjailed, and `jailed` is False;
- it also gets a mount namespace of its own where every folder but the system's (/usr,
  /etc...) and its own is empty: Landlock does not govern connect() to a Unix socket, and
  a dump's dblink or federated table could otherwise reach a live server's socket. When
  tiffin does not run as root, the jail first makes a user namespace (the invoking user
  mapped to itself) to mount in. Where no namespace can be made (a container without
  CAP_SYS_ADMIN, or unprivileged user namespaces turned off), `hidden` is False and the
  server runs all the same, able to reach whatever sockets its user can. weaknesses() says
  what was missing (drill reports each as a WARNING line and its verdict stands);
- MariaDB's --secure-file-priv is an empty folder of its own, and its plugin folder too (no
  INSTALL SONAME).
"""

from tiffin.engine.scratch.mariadb import ScratchMariaDB
from tiffin.engine.scratch.postgres import ScratchPostgres

__all__ = ["ScratchMariaDB", "ScratchPostgres"]

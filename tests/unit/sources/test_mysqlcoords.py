"""Reading a dump's binary log coordinates as it passes (tiffin/sources/mysqlcoords.py)."""

from __future__ import annotations

import io

from tiffin.sources.mysqlcoords import (
    HEAD_BYTES,
    CoordinateScanner,
    binlog_name_ok,
    check_gtid,
    dump_option,
)

HEAD = (
    b"-- MariaDB dump\n--\n-- CHANGE MASTER TO MASTER_LOG_FILE='bin.000012', MASTER_LOG_POS=4567;\n"
)
TAIL = b"-- SET GLOBAL gtid_slave_pos='0-1-42,1-2-7';\n"


def scanned(data: bytes, block: int = 7) -> CoordinateScanner:
    scanner = CoordinateScanner(io.BytesIO(data))
    got = b""
    while chunk := scanner.read(block):
        got += chunk
    assert got == data  # the bytes pass unchanged
    return scanner


def test_coordinates_are_read_from_head_and_tail_across_blocks():
    body = b"INSERT INTO t VALUES (1);\n" * 50_000
    assert scanned(HEAD + body + TAIL, 4096).found() == {
        "file": "bin.000012",
        "position": 4567,
        "gtid": "0-1-42,1-2-7",
    }


def test_a_coordinate_line_past_the_head_is_not_believed():
    assert scanned(b"x" * HEAD_BYTES + HEAD + TAIL, 1 << 16).found() == {}


def test_a_gtid_line_not_at_the_end_is_not_believed():
    assert scanned(HEAD + TAIL + b"CREATE TABLE t (i INT);\n").found() == {
        "file": "bin.000012",
        "position": 4567,
    }


def test_mysql_source_form_is_read():
    head = b"-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000003', SOURCE_LOG_POS=157;\n"
    assert scanned(head).found() == {"file": "binlog.000003", "position": 157}


def test_names_and_gtids_are_checked():
    assert binlog_name_ok("mysql-bin.000001")
    assert not binlog_name_ok("../etc/passwd.000001")
    assert not binlog_name_ok("bin.1")
    assert check_gtid("0-1-5, 1-1-2") == "0-1-5, 1-1-2"
    assert check_gtid("0-1-5'; DROP") is None
    assert check_gtid("") is None


def test_dump_option_by_tool():
    assert dump_option("/usr/bin/mariadb-dump", "--master-data") == "--master-data=2"
    assert dump_option("/usr/bin/mysqldump", "--source-data --master-data") == "--source-data=2"
    assert dump_option("/usr/bin/mysqldump", "--master-data") == "--master-data=2"

"""What the e2e tests back up: a folder tree, and databases filled the same way every time."""

from __future__ import annotations

import os


def make_tree(root):
    (root / "data" / "photos").mkdir(parents=True)
    (root / "data" / "notes.txt").write_text("hello\n")
    (root / "data" / "photos" / "cat.jpg").write_bytes(os.urandom(300_000))
    (root / "data" / "empty").write_bytes(b"")
    (root / "data" / "run.sh").write_text("#!/bin/sh\n")
    (root / "data" / "run.sh").chmod(0o755)
    (root / "data" / "cache.tmp").write_text("skip me")
    os.symlink("photos/cat.jpg", root / "data" / "link")
    os.utime(root / "data" / "notes.txt", (1_000_000_000, 1_000_000_000))
    return root / "data"


def populate_mysql(mariadb, db: str, engine: str = "InnoDB", rows: int = 50) -> None:
    mariadb.sql(f"DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}")
    values = ",".join(f"({i}, 'name-{i}', {i * 1.5})" for i in range(rows))
    mariadb.sql(
        f"CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), price DOUBLE) ENGINE={engine};"
        f"INSERT INTO items VALUES {values};"
        "CREATE VIEW cheap AS SELECT * FROM items WHERE price < 10;"
        "CREATE TRIGGER items_ins BEFORE INSERT ON items FOR EACH ROW "
        "SET NEW.name = UPPER(NEW.name);"
        "CREATE PROCEDURE count_items() SELECT COUNT(*) FROM items;",
        db,
    )


def populate_pgsql(postgres, db: str, rows: int = 40) -> None:
    postgres.sql(f'DROP DATABASE IF EXISTS "{db}"')
    postgres.sql(f'CREATE DATABASE "{db}"')
    postgres.sql(
        "CREATE EXTENSION IF NOT EXISTS pg_trgm;"
        "CREATE TABLE menu (id int PRIMARY KEY, dish text, price numeric(8,2), tags jsonb);"
        f"INSERT INTO menu SELECT i, 'dish ' || i, i * 0.5, jsonb_build_object('n', i) "
        f"FROM generate_series(1, {rows}) i;"
        "CREATE VIEW cheap AS SELECT * FROM menu WHERE price < 5;",
        db,
    )

"""What a PostgreSQL backup records of each database for drill and restore: its extensions,
its tables and their rows (counted exactly, estimated by the server, or not at all, as
`--counts` says), each database read in one psql session."""

from __future__ import annotations

from dataclasses import dataclass, field

# Row counts recorded for drill: exact for tables up to this size, this much in all.
COUNT_TABLE_BYTES = 256 << 20
COUNT_BYTES = 2 << 30
COUNT_MODES = ("exact", "estimate", "off")
BATCH = 200  # tables counted by one statement


@dataclass
class Inventory:
    """One database's extensions, tables, exact counts and the server's estimates."""

    extensions: dict[str, str] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)
    exact: list[tuple[str, str]] = field(default_factory=list)  # (name, quoted name)
    estimated: dict[str, int] = field(default_factory=dict)
    counted: dict[str, int] = field(default_factory=dict)
    used: int = 0  # bytes of the tables to count exactly


def inventory_sql(budget: int, counts: str, count_now: bool) -> str:
    """Given the bytes left to count exactly, the --counts mode and whether to count in this
    same session (psql's \\gexec runs the counting statements that a query returns), return
    the SQL whose output parse() reads. Sorted by size, a table is counted exactly when it
    and every smaller one fit in BUDGET, and it is at most COUNT_TABLE_BYTES."""
    sql = (
        "SELECT 'e', extname, extversion FROM pg_extension ORDER BY 2;\n"
        "SELECT 't', schemaname || '.' || tablename FROM pg_tables WHERE schemaname "
        "NOT IN ('pg_catalog', 'information_schema') ORDER BY 2;\n"
    )
    if counts == "off":
        return sql
    if counts != "exact":
        budget = -1
    # Only integers are formatted into these statements; names are quoted by the server.
    sized = (
        "WITH rel AS (SELECT n.nspname || '.' || c.relname AS name, "  # noqa: S608
        "format('%I.%I', n.nspname, c.relname) AS quoted, pg_relation_size(c.oid) AS size, "
        "c.reltuples::bigint AS estimate FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN "
        "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'), "
        f"sized AS (SELECT *, size <= {COUNT_TABLE_BYTES} AND sum(size) OVER "
        f"(ORDER BY size, name) <= {budget} AS exact FROM rel) "
    )
    sql += sized + "SELECT 'r', name, quoted, size, exact, estimate FROM sized "  # noqa: S608
    sql += "ORDER BY size, name;\n"
    if count_now:
        # Each exact table by its index among the exact ones: a name may hold a tab.
        numbered = (
            ", numbered AS (SELECT quoted, "  # noqa: S608
            "row_number() OVER (ORDER BY size, name) - 1 AS i FROM sized WHERE exact) "
            "SELECT string_agg(format('SELECT ''c'', %s, count(*) "
            f"FROM %s', i, quoted), ' UNION ALL ') FROM numbered GROUP BY i / {BATCH} \\gexec\n"
        )
        sql += sized + numbered
    return sql


def parse(rows: list[list[str]]) -> Inventory:
    """Given the rows that inventory_sql() printed, return the Inventory."""
    inv = Inventory()
    for row in rows:
        tag, name, *rest = row
        if tag == "e":
            inv.extensions[name] = rest[0]
        elif tag == "t":
            inv.tables.append(name)
        elif tag == "r" and rest[2] == "t":
            inv.exact.append((name, rest[0]))
            inv.used += int(rest[1])
        elif tag == "r" and int(rest[3]) >= 0:
            inv.estimated[name] = int(rest[3])
        elif tag == "c":
            inv.counted[inv.exact[int(name)][0]] = int(rest[0])
    return inv


def count_sql(tables: list[tuple[str, str]]) -> list[str]:
    """Given (name, quoted name) of tables, return the statements that count them exactly,
    each row giving the table's index in TABLES and its count."""
    return [
        " UNION ALL ".join(
            f"SELECT {i + n}, count(*) FROM {quoted}"  # noqa: S608 - quoted by the server
            for n, (_, quoted) in enumerate(tables[i : i + BATCH])
        )
        for i in range(0, len(tables), BATCH)
    ]

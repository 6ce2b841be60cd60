"""The layout's one rule (docs/architecture.md): imports point down the list of layers only,
with no circle, and no import hidden in a function to dodge one."""

from __future__ import annotations

import ast
from pathlib import Path

import tiffin

ROOT = Path(tiffin.__file__).parent

# Top to bottom. A module may import its own layer or any layer below it, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("tiffin.cli", "tiffin.entry"),
    ("tiffin.config",),
    ("tiffin.jobargs", "tiffin.usage", "tiffin.walargs"),
    ("tiffin.options", "tiffin.numbers"),
    ("tiffin.commands",),
    (
        "tiffin.engine.pipeline",
        "tiffin.engine.prune",
        "tiffin.engine.stored",
        "tiffin.engine.archive",
        "tiffin.engine.walview",
        "tiffin.engine.binlogship",
        "tiffin.engine.binlogreplay",
    ),
    (
        "tiffin.catalog.holdings",
        "tiffin.catalog.retention",
        "tiffin.catalog.drillrecord",
        "tiffin.catalog.watch",
        "tiffin.catalog.pitr",
        "tiffin.catalog.binlogs",
    ),
    ("tiffin.tell",),
    ("tiffin.engine.scratch",),
    ("tiffin.sources", "tiffin.codecs", "tiffin.targets"),
    (
        "tiffin.engine.streams",
        "tiffin.engine.process",
        "tiffin.engine.spawn",
        "tiffin.engine.lock",
        "tiffin.engine.safefile",
        "tiffin.engine.watchdog",
        "tiffin.catalog.backup",
        "tiffin.catalog.manifest",
        "tiffin.catalog.naming",
        "tiffin.catalog.walnames",
        "tiffin.engine.walformat",
        "tiffin.catalog.schema",
        "tiffin.job",
        "tiffin.urls",
    ),
    ("tiffin.errors", "tiffin"),  # tiffin itself: its __version__, no module below it
)

# An import inside a function is kept for start-up cost only: the CLI loads a command's
# modules when that command runs (jobargs, when that command's job is made), a registry loads
# a kind's module when that kind is used, and a heavy client library (pyrage, boto3, paramiko)
# is loaded only when a target or codec needs it.
LAZY_ALLOWED_IN = ("tiffin.cli", "tiffin.entry", "tiffin.jobargs")  # the package and its modules
LAZY_ALLOWED_OF = ("tiffin.codecs.age", "tiffin.targets.")
REGISTRIES = ("tiffin.sources", "tiffin.codecs", "tiffin.targets")  # each loads its own kinds
# (importer, imported): the WAL archive's modules, which only a base backup's prune needs;
# the mail, ping, metrics and Apprise modules, which a run loads when it reports through them
LAZY_PAIRS = {
    ("tiffin.engine.pipeline", "tiffin.engine.walview"),
    *(("tiffin.tell.report", f"tiffin.tell.{m}") for m in ("metrics", "notices", "notify")),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
PACKAGES = {module_name(p) for p in ROOT.rglob("__init__.py")}


def in_any(module: str, packages: tuple[str, ...]) -> bool:
    """Given a module and packages or modules, return whether it is one of them or inside one."""
    return any(module == p or module.startswith(p + ".") for p in packages)


def layer(module: str) -> int:
    """Given a module, return the index of its layer (the longest prefix that names it)."""
    best, found = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            below = prefix != "tiffin" and module.startswith(prefix + ".")
            if (module == prefix or below) and len(prefix) > best:
                best, found = len(prefix), i
    assert found >= 0, f"{module} is in no layer: add it to LAYERS and docs/architecture.md"
    return found


def imports(module: str) -> list[tuple[str, bool]]:
    """Given a module, return each tiffin module it imports, and whether inside a function."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    here = module if module in PACKAGES else module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        lazy = id(node) not in top
        if isinstance(node, ast.Import):
            found += [(a.name, lazy) for a in node.names if a.name.split(".")[0] == "tiffin"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = here.split(".")
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join([*pkg, base] if base else pkg)
            if base.split(".")[0] != "tiffin":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in MODULES else base, lazy))
    return found


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        layer(module)


def test_imports_point_down_the_layers_only() -> None:
    upward = [
        f"{m} imports {dep}"
        for m, deps in GRAPH.items()
        for dep, _ in deps
        if layer(dep) < layer(m)
    ]
    assert upward == []


def test_no_module_imports_the_option_table_but_the_edge() -> None:
    edge = ("tiffin.cli", "tiffin.config", "tiffin.jobargs", "tiffin.options", "tiffin.usage")
    users = {m for m, deps in GRAPH.items() for dep, _ in deps if in_any(dep, ("tiffin.options",))}
    assert {m for m in users if not in_any(m, edge)} == set()


def test_imports_inside_functions_only_keep_start_up_light() -> None:
    hidden = [
        f"{m} imports {dep} inside a function"
        for m, deps in GRAPH.items()
        for dep, lazy in deps
        if lazy
        and not in_any(m, LAZY_ALLOWED_IN)
        and not dep.startswith(LAZY_ALLOWED_OF)
        and not (m in REGISTRIES and dep.startswith(m + "."))
        and (m, dep) not in LAZY_PAIRS
    ]
    assert hidden == []


def test_no_import_circle() -> None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []
    circles: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for dep, _ in GRAPH.get(m, []):
            if dep == m or dep not in GRAPH:
                continue
            if state.get(dep) == 1:
                circles.append(" -> ".join([*path[path.index(dep) :], dep]))
            elif dep not in state:
                visit(dep)
        path.pop()
        state[m] = 2

    for m in GRAPH:
        if m not in state:
            visit(m)
    assert circles == []

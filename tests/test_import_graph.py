"""No import cycles in either package, and the data package never imports the baselines.

Walks every ``import`` statement of ``cemnist_data`` and ``cemnist_baselines`` -- those at module level and
those inside functions alike (an import moved into a function hides a cycle, it does not remove it) -- and
builds the graph of modules within the two packages. Importing a module runs its package's ``__init__``
first; that implicit edge is not an import statement and is not counted.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

PACKAGES = ("cemnist_data", "cemnist_baselines")


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        root = Path(importlib.util.find_spec(pkg).origin).parent
        for p in root.rglob("*.py"):
            parts = list(p.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join([pkg, *parts])] = p
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """``{module: {modules of the two packages it imports}}``."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = mod.split(".")
                    anchor = anchor[: len(anchor) - node.level + (1 if is_pkg else 0)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                # ``from pkg import submodule`` imports the submodule; ``from mod import name`` the module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                r = _resolve(t, mods) if t.split(".")[0] in PACKAGES else None
                if r is not None and r != mod:
                    graph[mod].add(r)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert find_cycles(import_graph()) == []


def test_the_data_package_does_not_import_the_baselines():
    bad = {m: sorted(t for t in ts if t.startswith("cemnist_baselines"))
           for m, ts in import_graph().items() if m.startswith("cemnist_data")}
    assert {m: ts for m, ts in bad.items() if ts} == {}


def test_the_baselines_use_no_private_module_of_the_data_package():
    bad = {m: sorted(t for t in ts if t.startswith("cemnist_data") and any(p.startswith("_") for p in t.split(".")))
           for m, ts in import_graph().items() if m.startswith("cemnist_baselines")}
    assert {m: ts for m, ts in bad.items() if ts} == {}



def private_cross_imports(mod: str, source: str) -> list[str]:
    """``["other_pkg.module:_name", ...]``: names starting with ``_`` that module ``mod`` (source text ``source``)
    imports from the other package (``from cemnist_data.cli import _helper``)."""
    pkg = mod.split(".")[0]
    return [f"{node.module}:{a.name}" for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.ImportFrom) and not node.level and node.module
            and node.module.split(".")[0] in PACKAGES and node.module.split(".")[0] != pkg
            for a in node.names if a.name.startswith("_")]


def test_no_private_name_is_imported_from_the_other_package():
    bad = {m: private_cross_imports(m, p.read_text()) for m, p in _modules().items()}
    assert {m: b for m, b in bad.items() if b} == {}


def test_the_cross_package_check_sees_a_private_import():
    src = "from cemnist_data.cli import _secret, public\nfrom cemnist_data import fileio\nfrom ._own import _x\n"
    assert private_cross_imports("cemnist_baselines.cli", src) == ["cemnist_data.cli:_secret"]
    assert private_cross_imports("cemnist_data.cli", src) == []  # its own package: allowed


def long_functions(source: str, *, limit: int = 100) -> list[tuple[str, int]]:
    """``[(name, lines)]`` of the functions in ``source`` longer than ``limit`` lines whose docstring or comments
    do not say why (the words "over 100 lines")."""
    lines = source.splitlines()
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            text = "\n".join(lines[node.lineno - 1:node.end_lineno]).lower()
            if n > limit and "over 100 lines" not in text:
                out.append((node.name, n))
    return out


def test_no_function_over_100_lines_without_a_reason():
    bad = {m: long_functions(p.read_text()) for m, p in _modules().items()}
    assert {m: b for m, b in bad.items() if b} == {}


def test_the_length_check_counts_lines_and_reads_the_reason():
    body = "".join(f"    x{i} = {i}\n" for i in range(100))
    assert long_functions("def f():\n" + body) == [("f", 101)]
    assert long_functions("def f():\n    # over 100 lines on purpose: a table\n" + body) == []
    assert long_functions("def f():\n" + body[:-len("    x99 = 99\n")]) == []

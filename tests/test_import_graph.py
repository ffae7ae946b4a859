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

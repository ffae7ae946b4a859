"""docs/RELIABILITY.md names the test that holds each promise: every test it names must exist.

A reference is ``tests/<path>.py::test_name`` in backticks, or the short ``::test_name``, which means the file
named last on the same line, else (in a table row) the file the section's introduction names (the first
``tests/...py`` path of the section, before its table). A bare ``test_name`` in backticks in the prose must be
a test of some file under tests/.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "docs" / "RELIABILITY.md",)
_REF = re.compile(r"`(tests/[\w/]+\.py)?::(test_\w+)(?:\[[^\]`]*\])?`")
_PATH = re.compile(r"tests/[\w/]+\.py")
_BARE = re.compile(r"`(test_\w+)`")


def doc_test_refs(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The ``(file, test)`` pairs a markdown text names, and the short references whose file cannot be told."""
    refs, unresolved = [], []
    for section in re.split(r"\n(?=## )", text):
        intro = section.split("\n|", 1)[0]
        m = _PATH.search(intro)
        section_file = m.group(0) if m else None
        for line in section.splitlines():
            current = section_file if line.startswith("|") else None
            for ref in _REF.finditer(line):
                if ref.group(1):
                    current = ref.group(1)
                if current is None:
                    unresolved.append(f"`::{ref.group(2)}` in: {line[:80]}")
                else:
                    refs.append((current, ref.group(2)))
    return refs, unresolved



def defined_tests(path: Path) -> set[str]:
    """Names of the test functions a test file defines (module level or in a class)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.name.startswith("test_")}


def missing_tests(text: str, root: Path) -> list[str]:
    """The references of ``text`` to a test file or a test that does not exist under ``root``, and the short
    references whose file cannot be told."""
    refs, out = doc_test_refs(text)
    cache: dict[str, set[str]] = {}
    for file, name in refs:
        p = root / file
        if not p.is_file():
            out.append(f"{file}::{name}: no such file")
            continue
        if name not in cache.setdefault(file, defined_tests(p)):
            out.append(f"{file}::{name}: no such test")
    return out


def test_every_test_the_reliability_page_names_exists():
    every = set().union(*(defined_tests(p) for p in (ROOT / "tests").rglob("test_*.py")))
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        refs, _ = doc_test_refs(text)
        assert len(refs) >= 60, f"{doc}: only {len(refs)} test references found: the parser lost track"
        assert missing_tests(text, ROOT) == [], doc
        bare = _BARE.findall(text)
        assert bare and sorted(set(bare) - every) == [], doc


def test_the_check_finds_a_renamed_test_a_missing_file_and_an_unresolvable_reference(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_kept():\n    pass\n\nclass TestC:\n"
                                                  "    def test_in_class(self):\n        pass\n")
    text = ("# Page\n\n## Cases\n\nIn [`tests/test_x.py`](../tests/test_x.py).\n\n| # | Covered by |\n|---|---|\n"
            "| 1 | `tests/test_x.py::test_kept`, `::test_in_class`, `::test_renamed[a]` |\n"
            "| 2 | `::test_kept`, `tests/test_gone.py::test_kept` |\n\n## Other\n\nSee `::test_kept`.\n")
    assert doc_test_refs(text)[0][:3] == [("tests/test_x.py", "test_kept"), ("tests/test_x.py", "test_in_class"),
                                             ("tests/test_x.py", "test_renamed")]
    assert missing_tests(text, tmp_path) == ["`::test_kept` in: See `::test_kept`.",
                                             "tests/test_x.py::test_renamed: no such test",
                                             "tests/test_gone.py::test_kept: no such file"]

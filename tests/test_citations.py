"""Docstrings, comments and docs cite what a reader can open (a paper, a reference file, a docs section), never
the project's issue tracker ("issue 12", "item 4", "§3"): issues are not part of the repository."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("cemnist_data", "cemnist_baselines", "builder_scripts", "bench", "examples", "tests", "docs", ".ci")
FILES = ("README.md", "DATASET_CARD.md", "run.sh", "pyproject.toml")
SUFFIXES = {".py", ".md", ".sh", ".toml", ".yaml", ".yml", ".txt", ""}
_TRACKER = re.compile(r"\bissues? #?\d+|\bitems? \d+\b|§", re.IGNORECASE)
_THIS = Path(__file__).resolve()


def tracker_citations(text: str) -> list[str]:
    """The phrases of ``text`` that cite the issue tracker (``issue 12``, ``issues 3``, ``item 4``, ``§3``)."""
    return [m.group(0) for m in _TRACKER.finditer(text)]


def _files() -> list[Path]:
    out = [ROOT / f for f in FILES if (ROOT / f).is_file()]
    for folder in FOLDERS:
        for p in sorted((ROOT / folder).rglob("*")):
            if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts and p.resolve() != _THIS:
                out.append(p)
    return out


def test_nothing_cites_the_issue_tracker():
    bad = {}
    for p in _files():
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        lines = [f"{i}: {ln.strip()[:100]}" for i, ln in enumerate(text.splitlines(), 1) if tracker_citations(ln)]
        if lines:
            bad[str(p.relative_to(ROOT))] = lines
    assert bad == {}


def test_the_citation_check_finds_each_form():
    text = 'see issue 12 and Issue #3, items 4 and 5; "§2"; not a tissue 12, not an item list'
    assert tracker_citations(text) == ["issue 12", "Issue #3", "items 4", "§"]

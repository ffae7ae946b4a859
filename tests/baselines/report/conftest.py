"""Fixtures of the report's picture tests (SYNTHETIC results only, see synthetic_results.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from synthetic_results import make_results_dir


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 methods x 2 seeds of synthetic result JSONs, traces for seed 0."""
    return make_results_dir(tmp_path_factory.mktemp("synthetic_results"))

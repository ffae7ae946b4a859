"""Fixtures for the visualisation tests (SYNTHETIC data only, see viz_synthetic.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from viz_synthetic import make_results_dir  # noqa: E402


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 methods x 2 seeds of synthetic result JSONs, traces for seed 0."""
    return make_results_dir(tmp_path_factory.mktemp("synthetic_results"))

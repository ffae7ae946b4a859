"""Fixtures for the baselines tests: offline HF hub and one dataset cache shared by the session."""
from __future__ import annotations

import os

import pytest

TINY = dict(epochs=1, max_train=32, max_test=16, batch_size=16, trace_panel=3)


@pytest.fixture(scope="session")
def cemnist_cache(tmp_path_factory: pytest.TempPathFactory):
    """Set HF_HUB_OFFLINE=1 and CEMNIST_CACHE to a session temp dir (the data is built once, ~10 s)."""
    cache = tmp_path_factory.mktemp("cemnist_cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("CEMNIST_CACHE", str(cache))
    yield str(cache)
    mp.undo()


@pytest.fixture(scope="session")
def tiny_cfg(cemnist_cache):
    """The tiny preset, shrunk further for the test budget."""
    from cemnist_baselines.config import get_config

    return get_config("tiny", **TINY)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, tiny_cfg):
    """One tiny run per method (seed 0), in one results folder; returns (folder, {method: result})."""
    from cemnist_baselines.runner import run_many

    out = tmp_path_factory.mktemp("tiny_runs")
    res = run_many(methods="all", seeds=[0], cfg=tiny_cfg, out_dir=out, preset="tiny", device="cpu",
                   trace=True, progress=False)
    return out, {r["method"]: r for r in res}

"""Fixtures for the baselines tests: the session's dataset cache and a tiny board of finished runs."""
from __future__ import annotations

import pytest

TINY = dict(epochs=1, max_train=32, max_test=16, batch_size=16, trace_panel=3)


@pytest.fixture(scope="session")
def cemnist_cache(shared_cache) -> str:
    """The session's one dataset cache (``$CEMNIST_CACHE``, set offline by tests/conftest.py), as a string: the
    release is generated once per test session, for the data and the baselines tests alike."""
    return str(shared_cache)


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

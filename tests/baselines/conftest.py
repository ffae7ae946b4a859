"""Fixtures for the baselines tests: the session's dataset cache and the one tiny board of finished runs.

The board is every built-in method (``cemnist_baselines.registry.BUILTIN_METHODS``), seed 0, overlap mode,
``--trace``, trained once per test session with :data:`TINY` -- the config of the committed tiny references
(tests/baselines/references/tiny: ``cemnist-baselines run --preset tiny --epochs 1 --max-train 16
--max-test 8``). One ``run_many`` over all methods, so the non-joint methods reuse naive's task 0, as the
references did; tests/baselines/test_tiny_references.py compares the board with them. Every test that needs
finished runs reads this board (copying it before it changes anything); a test that needs another seed, mode
or config trains its own small run and says why.
"""
from __future__ import annotations

import pytest

TINY = dict(epochs=1, max_train=16, max_test=8)
"""The overrides of the ``tiny`` preset that the committed tiny references were made with: one step of 16
images per task (batch 16), scored on a pool of 8 test images; ``trace_panel`` is the preset's 4."""


@pytest.fixture(scope="session")
def cemnist_cache(shared_cache) -> str:
    """The session's one dataset cache (``$CEMNIST_CACHE``, set offline by tests/conftest.py), as a string: the
    release is generated once per test session, for the data and the baselines tests alike."""
    return str(shared_cache)


@pytest.fixture(scope="session")
def tiny_cfg(cemnist_cache):
    """The config of the tiny board: the ``tiny`` preset with :data:`TINY`."""
    from cemnist_baselines.config import get_config

    return get_config("tiny", **TINY)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, tiny_cfg):
    """The tiny board: one run per built-in method (seed 0, overlap, traced) in one results folder, trained
    once per session (about 12 s on 2 cores); returns (folder, {method: result}). Tests copy the folder before
    they change anything in it."""
    from cemnist_baselines.registry import BUILTIN_METHODS
    from cemnist_baselines.runner import run_many

    out = tmp_path_factory.mktemp("tiny_runs")
    res = run_many(methods=list(BUILTIN_METHODS), seeds=[0], cfg=tiny_cfg, out_dir=out, preset="tiny",
                   device="cpu", trace=True, progress=False)
    return out, {r["method"]: r for r in res}

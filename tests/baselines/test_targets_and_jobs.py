"""Quality targets on the full protocol (gpu) and concurrent runs in spawned processes (slow)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cemnist_baselines.leaderboard import aggregate, load_results
from cemnist_baselines.runner import run_many
from cemnist_baselines.targets import check_targets, load_targets

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "results" / "v1"


@pytest.mark.gpu
def test_quality_targets_full_protocol(tmp_path, cemnist_cache):
    """Committed full-protocol results (results/v1) must meet targets.csv; without them, run the protocol."""
    results = [r for r in load_results(COMMITTED) if r["preset"] == "default"] if COMMITTED.exists() else []
    if not results:
        if not torch.cuda.is_available():
            pytest.skip("no committed results/v1 and no CUDA device to produce them")
        from cemnist_baselines.config import get_config

        results = run_many(methods="all", seeds=[0, 1, 2], cfg=get_config("default"), out_dir=tmp_path,
                           preset="default", device="cuda", jobs=4, progress=False)
    checks = check_targets(aggregate(results), load_targets())
    failed = [msg for _, _, ok, msg in checks if not ok]
    assert not failed, "quality targets missed:\n" + "\n".join(failed)


@pytest.mark.slow
def test_jobs_in_spawned_processes_equal_sequential(tmp_path, tiny_cfg, tiny_runs):
    out, seq = tiny_runs
    res = run_many(methods=["naive", "kd", "mib"], seeds=[0], cfg=tiny_cfg, out_dir=tmp_path, preset="tiny",
                   device="cpu", jobs=2, trace=True, progress=False)
    got = {r["method"]: r for r in res}
    for m in ("naive", "kd", "mib"):
        # spawned workers use 1 thread each on this 2-core machine; CPU kernels are exact here
        assert got[m]["steps"] == seq[m]["steps"], m
    assert sum(r["shared_task0"] for r in res) == 2
    assert json.loads((tmp_path / "kd-2-2-overlap-seed0.json").read_text())["final"] == got["kd"]["final"]

"""Quality targets on the full protocol (gpu) and concurrent runs in spawned processes (slow)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from cemnist_baselines.config import get_config
from cemnist_baselines.leaderboard import aggregate
from cemnist_baselines.results import load_results
from cemnist_baselines.runner import run_many
from cemnist_baselines.targets import check_targets, load_targets



@pytest.mark.gpu
def test_quality_targets_full_protocol(tmp_path, cemnist_cache):
    """The default protocol on a GPU meets targets.csv (the CPU board's verdicts: test_frozen_results.py)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    results = run_many(methods="all", seeds=[0, 1, 2], cfg=get_config("default"), out_dir=tmp_path,
                       preset="default", device="cuda", jobs=4, progress=False)
    checks = check_targets(aggregate(results), load_targets(), protocol=get_config("default").protocol(),
                           device="cuda")
    failed = [msg for _, _, ok, msg in checks if not ok]
    assert not failed, "quality targets missed:\n" + "\n".join(failed)


@pytest.mark.slow
def test_jobs_in_spawned_processes_equal_sequential(tmp_path, tiny_cfg):
    # spawned workers get cpu_count // jobs threads; CPU conv reductions depend on the thread count, so
    # the sequential reference runs with the same count
    jobs = 2
    threads = max(1, (os.cpu_count() or 1) // jobs)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        seq = run_many(methods=["naive", "kd", "mib"], seeds=[0], cfg=tiny_cfg, out_dir=tmp_path / "seq",
                       preset="tiny", device="cpu", progress=False)
    finally:
        torch.set_num_threads(before)
    res = run_many(methods=["naive", "kd", "mib"], seeds=[0], cfg=tiny_cfg, out_dir=tmp_path / "par", preset="tiny",
                   device="cpu", jobs=jobs, progress=False)
    for a, b in zip(seq, res):
        assert (a["method"], a["seed"]) == (b["method"], b["seed"])
        assert a["steps"] == b["steps"] and a["final"] == b["final"], a["method"]
    assert sum(r["shared_task0"] for r in res) == 2
    assert json.loads((tmp_path / "par" / "kd-2-2-overlap-seed0.json").read_text())["final"] == res[1]["final"]

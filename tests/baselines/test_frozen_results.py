"""The committed CPU demo run is a frozen reference: retraining naive with the same preset, seed and CPU
thread count must give exactly the committed metrics (slow: ~6 min on 2 cores)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cemnist_baselines.config import TrainConfig, get_config
from cemnist_baselines.trainer import run_one

COMMITTED = Path(__file__).resolve().parents[2] / "results" / "cpu-demo" / "naive-2-2-overlap-seed0.json"


@pytest.mark.slow
def test_cpu_demo_naive_reproduces_the_committed_result(tmp_path, cemnist_cache):
    ref = json.loads(COMMITTED.read_text())
    if torch.get_num_threads() != ref["env"]["num_threads"]:
        pytest.skip(f"CPU results are reproducible at the same thread count ({ref['env']['num_threads']}); "
                    f"this process uses {torch.get_num_threads()}")
    cfg = get_config("cpu-demo")
    # the committed config is this preset (fields added later keep their defaults)
    assert TrainConfig.from_dict(ref["config"]).resolved("cpu") == cfg.resolved("cpu")
    res = run_one(method="naive", seed=0, cfg=cfg, out_dir=tmp_path, preset="cpu-demo", device="cpu",
                  progress=False)
    assert res["dataset"] == ref["dataset"]
    assert res["steps"] == ref["steps"]
    assert res["R"] == ref["R"] and res["final"] == ref["final"]

"""LwF, ILT, PL, PLOP and replay end to end on a shrunken tiny preset: every task trains, the method's protocol
values and source are recorded, the method state survives --resume, and the runs share the task-0 model.

Part of the default suite: six 5-task runs of 2 steps per task take about 13 s on an idle 2-core CPU
(measured with --durations); the formulas themselves are tested in test_methods_formulas.py."""
from __future__ import annotations

import json
import math

import pytest
import torch

SMALL = dict(epochs=1, max_train=16, max_test=8, batch_size=8, trace_panel=2)  # 2 steps per task


@pytest.fixture(scope="module")
def small_cfg(cemnist_cache):
    from cemnist_baselines.config import get_config

    return get_config("tiny", **SMALL)


@pytest.fixture(scope="module")
def new_runs(tmp_path_factory, small_cfg):
    from cemnist_baselines.runner import run_many

    out = tmp_path_factory.mktemp("new_methods")
    res = run_many(methods=["naive", "lwf", "ilt", "pl", "plop", "replay"], seeds=[0], cfg=small_cfg, out_dir=out,
                   preset="tiny", device="cpu", progress=False)
    return out, {r["method"]: r for r in res}


@pytest.mark.parametrize("method, values", [
    ("ilt", {"kd_weight": 100.0, "de_weight": 100.0}),
    ("pl", {}),
    ("lwf", {"kd_weight": 100.0}),
    ("plop", {"pod_factor": 0.01, "pod_logits_factor": 0.0005, "threshold": 0.001,
              "pod_maps": "enc1.pre,enc2.pre,enc3.pre,dec1.pre,dec2", "median": "plop_find_median"}),
    ("replay", {"memory_size": 100, "per_batch": 8}),
])
def test_method_runs_every_task(new_runs, method, values):
    out, runs = new_runs
    r = runs[method]
    assert len(r["steps"]) == 5 and r["method_protocol"] == values
    assert r["method_source"].startswith("cemnist_baselines.methods:")
    assert all(math.isfinite(s["miou_bg"]) for s in r["steps"])
    assert r["shared_task0"] and r["steps"][0] == runs["naive"]["steps"][0]  # task 0 is plain CE, shared
    assert (out / f"{method}-2-2-overlap-seed0.json").exists()


def test_methods_train_differently_from_naive_after_task0(new_runs):
    from cemnist_baselines.checkpoints import load_checkpoint

    out, _ = new_runs
    ref, _, _, _ = load_checkpoint(out / "checkpoints" / "naive-2-2-overlap-seed0" / "task1.safetensors")
    for m in ("ilt", "plop", "replay"):  # pl: the 2-step task-0 model predicts background only -> no pseudo-labels
        w, _, _, _ = load_checkpoint(out / "checkpoints" / f"{m}-2-2-overlap-seed0" / "task1.safetensors")
        # at a task's first step the new model equals the old one (distillation gradients are 0) and Adam moves
        # each weight by lr * sign(grad); from the second step on the methods differ
        assert any(not torch.equal(w[k], ref[k]) for k in ref), m


def test_method_protocol_values_split_leaderboard_rows(new_runs):
    from cemnist_baselines.leaderboard import aggregate

    _, runs = new_runs
    rows = {r["method"]: r for r in aggregate(list(runs.values()))}
    assert rows["replay"]["method.memory_size"] == 100 and rows["ilt"]["method.kd_weight"] == 100.0


def test_replay_and_plop_state_is_checkpointed_and_resumes_exactly(new_runs, small_cfg, tmp_path):
    from cemnist_baselines.checkpoints import load_checkpoint
    from cemnist_baselines.trainer import run_one

    out, runs = new_runs
    _, extra, _, _ = load_checkpoint(out / "checkpoints" / "replay-2-2-overlap-seed0" / "task2.safetensors")
    digits = extra["method.replay.digit"].tolist()
    assert extra["method.replay.images"].shape == (len(digits), 60, 60) and 0 < len(digits) <= 100
    assert sorted(set(digits)) == [0, 1, 2, 3, 4, 5]  # 16 images per task: fewer than the quotas
    assert max(digits.count(d) for d in range(6)) <= 17
    _, extra, _, _ = load_checkpoint(out / "checkpoints" / "plop-2-2-overlap-seed0" / "task2.safetensors")
    assert extra["method.plop.thresholds"].shape == (5,) and bool((extra["method.plop.thresholds"] >= 0.001).all())
    # resume replay from its task-2 checkpoint in a copy of the folder: the memory comes back from the checkpoint
    import shutil

    shutil.copytree(out / "checkpoints" / "replay-2-2-overlap-seed0", tmp_path / "checkpoints" / "replay-2-2-overlap-seed0")
    for i in (3, 4):
        (tmp_path / "checkpoints" / "replay-2-2-overlap-seed0" / f"task{i}.safetensors").unlink()
    again = run_one(method="replay", seed=0, cfg=small_cfg, out_dir=tmp_path, preset="tiny", device="cpu",
                    resume=True, progress=False)
    assert again["steps"] == runs["replay"]["steps"]
    saved = json.loads((tmp_path / "replay-2-2-overlap-seed0.json").read_text())
    assert saved["final"] == runs["replay"]["final"]

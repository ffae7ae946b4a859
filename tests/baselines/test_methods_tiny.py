"""LwF, ILT, PL, PLOP and replay end to end on the session's tiny board (tests/baselines/conftest.py): every
task trains, the method's protocol values and source are recorded, the method state survives --resume, and the
runs share the task-0 model. The formulas themselves are tested in test_methods_formulas.py."""
from __future__ import annotations

import json
import math

import pytest
import torch


@pytest.fixture(scope="module")
def two_step_runs(tmp_path_factory, tiny_cfg):
    """naive and ilt with two steps per task (batch 8 instead of the board's 16). Needed because the board
    trains one step per task, and at a task's first step the new model equals the old one: ILT's distillation
    gradients are 0 there, so on the board ILT's weights equal naive's after task 1 and only a second step
    shows that its losses train differently (about 3 s on 2 cores)."""
    from cemnist_baselines.runner import run_many

    out = tmp_path_factory.mktemp("two_step")
    run_many(methods=["naive", "ilt"], seeds=[0], cfg=tiny_cfg.replace(batch_size=8), out_dir=out, preset="tiny",
             device="cpu", progress=False)
    return out


@pytest.mark.parametrize("method, values", [
    ("ilt", {"kd_weight": 100.0, "de_weight": 100.0}),
    ("pl", {}),
    ("lwf", {"kd_weight": 100.0}),
    ("plop", {"pod_factor": 0.01, "pod_logits_factor": 0.0005, "threshold": 0.001,
              "pod_maps": "enc1.pre,enc2.pre,enc3.pre,dec1.pre,dec2", "median": "plop_find_median"}),
    ("replay", {"memory_size": 100, "per_batch": 8}),
])
def test_method_runs_every_task(tiny_runs, method, values):
    out, runs = tiny_runs
    r = runs[method]
    assert len(r["steps"]) == 5 and r["method_protocol"] == values
    assert r["method_source"].startswith("cemnist_baselines.methods:")
    assert all(math.isfinite(s["miou_bg"]) for s in r["steps"])
    assert r["shared_task0"] and r["steps"][0] == runs["naive"]["steps"][0]  # task 0 is plain CE, shared
    assert (out / f"{method}-2-2-overlap-seed0.json").exists()


def _weights_after(out, method, task):
    """The model weights of ``method``'s run in ``out`` after task ``task`` (its checkpoint)."""
    from cemnist_baselines.checkpoints import load_checkpoint

    return load_checkpoint(out / "checkpoints" / f"{method}-2-2-overlap-seed0" / f"task{task}.safetensors")[0]


def test_methods_train_differently_from_naive_after_task0(tiny_runs, two_step_runs):
    out, _ = tiny_runs
    ref = _weights_after(out, "naive", 1)
    # at a task's first step the new model equals the old one (distillation gradients are 0) and Adam moves
    # each weight by lr * sign(grad): on the one-step board, methods that change the head's init (mib, plop),
    # the loss at that step (kd) or the batch (replay) already differ after task 1 ...
    for m in ("kd", "mib", "plop", "plop_tuned", "replay"):
        w = _weights_after(out, m, 1)
        assert any(not torch.equal(w[k], ref[k]) for k in ref), m
    # ... lwf's and ilt's distillation cannot act yet, and pl finds no pseudo-labels (the one-step task-0 model
    # predicts background only) ...
    for m in ("lwf", "ilt", "pl"):
        w = _weights_after(out, m, 1)
        assert all(torch.equal(w[k], ref[k]) for k in ref), m
    # ... pl's pseudo-labels act by task 4 (its old model then predicts digits)
    w4, ref4 = _weights_after(out, "pl", 4), _weights_after(out, "naive", 4)
    assert any(not torch.equal(w4[k], ref4[k]) for k in ref4)
    # from a task's second step on, ilt's distillation trains differently from naive
    ref, w = _weights_after(two_step_runs, "naive", 1), _weights_after(two_step_runs, "ilt", 1)
    assert any(not torch.equal(w[k], ref[k]) for k in ref)


def test_method_protocol_values_split_leaderboard_rows(tiny_runs):
    from cemnist_baselines.leaderboard import aggregate

    _, runs = tiny_runs
    rows = {r["method"]: r for r in aggregate(list(runs.values()))}
    assert rows["replay"]["method.memory_size"] == 100 and rows["ilt"]["method.kd_weight"] == 100.0


def test_replay_and_plop_state_is_checkpointed_and_resumes_exactly(tiny_runs, tiny_cfg, tmp_path):
    from cemnist_baselines.checkpoints import load_checkpoint
    from cemnist_baselines.trainer import run_one

    out, runs = tiny_runs
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
    again = run_one(method="replay", seed=0, cfg=tiny_cfg, out_dir=tmp_path, preset="tiny", device="cpu",
                    resume=True, progress=False)
    assert again["steps"] == runs["replay"]["steps"]
    saved = json.loads((tmp_path / "replay-2-2-overlap-seed0.json").read_text())
    assert saved["final"] == runs["replay"]["final"]

"""What the numbers are measured on (DATASET_CARD.md, "The rules (normative)"): one fixed pool per run,
honest subsets, mode-specific joint data, artefacts that cannot go stale, result folders that cannot mix."""
from __future__ import annotations

import json
import warnings

import pytest
import torch

from cemnist_baselines import checkpoints, trainer
from cemnist_baselines.checkpoints import load_checkpoint
from cemnist_baselines.config import TrainConfig, get_config
from cemnist_baselines.data import _subset_index, load_eval_pool, load_joint_train, load_task_data
from cemnist_baselines.runner import run_many
from cemnist_baselines.trainer import run_one


@pytest.mark.parametrize("n, k", [(5000, 32), (5000, 500), (2500, 100)])
def test_max_test_subset_is_fixed_sorted_and_independent_of_the_run(n, k):
    a, b = _subset_index(n, k, purpose="eval-test"), _subset_index(n, k, purpose="eval-test")
    assert torch.equal(a, b) and a.numel() == k and len(set(a.tolist())) == k
    assert torch.equal(a, a.sort().values) and int(a.max()) < n
    assert not torch.equal(a[:16], torch.arange(16))            # a random subset, not the first rows
    assert _subset_index(n, None, purpose="x") is None and _subset_index(n, n, purpose="x") is None


def test_max_test_pool_is_the_same_images_at_every_step(cemnist_cache, tiny_runs, tiny_cfg):
    out, res = tiny_runs
    n = tiny_cfg.max_test
    x1, y1 = load_eval_pool(mode="overlap", n_tasks=5, split="test", max_n=n)
    full_x, full_y = load_eval_pool(mode="overlap", n_tasks=5, split="test", max_n=None)
    idx = _subset_index(5000, n, purpose="eval-test")
    assert full_x.shape[0] == 5000 and torch.equal(x1, full_x[idx]) and torch.equal(y1, full_y[idx])
    # the pool holds every digit (in full_mask) and the run counted exactly its pixels at every step
    per_label = torch.bincount(full_y.flatten().long(), minlength=11)
    assert (per_label[:11] > 0).all()
    for m in ("naive", "mib"):
        rows = [torch.tensor(s["confusion"]).sum(1) for s in res[m]["steps"]]   # true-label counts per step
        truth = torch.bincount(y1.flatten().long(), minlength=11)
        assert all(torch.equal(r, truth) for r in rows), m


@pytest.mark.parametrize("mode", ["overlap", "disjoint"])
def test_joint_train_is_the_union_of_the_modes_task_images_in_equal_numbers(cemnist_cache, mode):
    x, y = load_joint_train(mode=mode, n_tasks=5, limit=8)
    assert x.shape == (40, 60, 60)
    for t in range(5):
        xt, yt = load_task_data(task=t, split="train", mode=mode, limit=8, mask_column="full_mask")
        assert torch.equal(x[8 * t: 8 * t + 8], xt) and torch.equal(y[8 * t: 8 * t + 8], yt)
    if mode == "disjoint":  # disjoint task t holds no digit of a later task: neither does its joint share
        assert int(y[:8].max()) <= 2


def test_validation_pool_is_every_tasks_validation_split(cemnist_cache):
    x, y = load_eval_pool(mode="overlap", n_tasks=5, split="validation", max_n=None)
    assert x.shape[0] == 2500
    x2, _ = load_task_data(task=3, split="validation", mode="overlap", mask_column="full_mask")
    assert torch.equal(x[1500:2000], x2)


def test_a_code_change_does_not_reuse_a_stale_shared_task0(tmp_path, tiny_cfg, monkeypatch):
    cfg = tiny_cfg.replace(max_train=16)
    monkeypatch.setattr(checkpoints, "git_commit", lambda: "abc")           # the code as it stands: fixed identity
    monkeypatch.setattr(checkpoints, "code_fingerprint", lambda: "original")
    a = run_one(method="naive", seed=0, cfg=cfg, out_dir=tmp_path, progress=False, device="cpu")
    b = run_one(method="kd", seed=0, cfg=cfg, out_dir=tmp_path, progress=False, device="cpu")
    assert a["shared_task0"] is False and b["shared_task0"] is True
    monkeypatch.setattr(checkpoints, "code_fingerprint", lambda: "patched task-0 loss")  # a simulated code change
    c = run_one(method="mib", seed=0, cfg=cfg, out_dir=tmp_path, progress=False, device="cpu")
    assert c["shared_task0"] is False
    assert len(list((tmp_path / "checkpoints" / "_shared").glob("*.safetensors"))) == 2


def test_thread_count_and_precision_key_the_shared_task0(tiny_cfg):
    h = {"x/y": "0" * 64}
    k0 = checkpoints.task0_key(tiny_cfg, 0, torch.device("cpu"), False, h)
    assert k0 == checkpoints.task0_key(tiny_cfg.replace(kd_lambda=3.0, teacher_cache=False), 0, torch.device("cpu"), False, h)
    assert k0 != checkpoints.task0_key(tiny_cfg.replace(amp_bf16=True), 0, torch.device("cpu"), False, h)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(max(1, before - 1) if before > 1 else 2)
        assert k0 != checkpoints.task0_key(tiny_cfg, 0, torch.device("cpu"), False, h)
    finally:
        torch.set_num_threads(before)


def test_a_damaged_shared_task0_is_recomputed_not_fatal(tmp_path, tiny_cfg):
    cfg = tiny_cfg.replace(max_train=16)
    run_one(method="naive", seed=0, cfg=cfg, out_dir=tmp_path, progress=False, device="cpu")
    (shared,) = (tmp_path / "checkpoints" / "_shared").glob("*.safetensors")
    shared.write_bytes(shared.read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match="damaged or truncated checkpoint"):
        r = run_one(method="kd", seed=0, cfg=cfg, out_dir=tmp_path, progress=False, device="cpu")
    assert r["shared_task0"] is False
    load_checkpoint(shared)  # rewritten, readable again


def test_a_flipped_byte_in_a_checkpoint_is_refused_on_resume(tmp_path, tiny_cfg):
    cfg = tiny_cfg.replace(max_train=16)
    run_one(method="naive", seed=0, cfg=cfg, out_dir=tmp_path, progress=False, device="cpu")
    p = tmp_path / "checkpoints" / "naive-2-2-overlap-seed0" / "task4.safetensors"
    data = bytearray(p.read_bytes())
    data[-3] ^= 0x40   # an exponent bit of the last weight
    p.write_bytes(bytes(data))
    (tmp_path / "naive-2-2-overlap-seed0.json").unlink()
    with pytest.raises(ValueError, match=r"task4.safetensors: checkpoint content does not match its recorded SHA-256"):
        run_one(method="naive", seed=0, cfg=cfg, out_dir=tmp_path, progress=False, device="cpu", resume=True)


def test_a_folder_holding_another_config_is_refused_then_replaced_as_a_whole(tmp_path, tiny_cfg):
    cfg = tiny_cfg.replace(max_train=16)
    run_many(methods="naive", seeds=[0], cfg=cfg, out_dir=tmp_path, preset="tiny", device="cpu", trace=True,
             progress=False)
    other = cfg.replace(epochs=2)
    with pytest.raises(ValueError, match=r"already holds other runs .*naive-2-2-overlap-seed0.json \(config differs in \['epochs'\]"):
        run_many(methods="naive", seeds=[0], cfg=other, out_dir=tmp_path, preset="x", device="cpu", progress=False)
    r = run_many(methods="naive", seeds=[0], cfg=other, out_dir=tmp_path, preset="x", device="cpu", progress=False,
                 overwrite=True)[0]
    assert json.loads((tmp_path / "naive-2-2-overlap-seed0.json").read_text())["config"]["epochs"] == 2
    assert not (tmp_path / "naive-2-2-overlap-seed0.trace.safetensors").exists()   # the old trace went with it
    assert r["config"]["epochs"] == 2


def test_an_interrupted_fresh_run_leaves_no_stale_result(tmp_path, tiny_cfg, monkeypatch):
    cfg = tiny_cfg.replace(max_train=16)
    run_one(method="naive", seed=0, cfg=cfg, out_dir=tmp_path, progress=False, device="cpu")
    real = trainer.train_task

    def crash(ctx, **kw):
        if kw["t"] == 2:
            raise KeyboardInterrupt
        return real(ctx, **kw)

    monkeypatch.setattr(trainer, "train_task", crash)
    with pytest.raises(KeyboardInterrupt):
        run_one(method="naive", seed=0, cfg=cfg, out_dir=tmp_path, progress=False, device="cpu")
    assert not (tmp_path / "naive-2-2-overlap-seed0.json").exists()


@pytest.mark.parametrize("field, value, msg", [
    ("max_train", 0, "max_train must be None"), ("max_train", -5, "max_train must be None"),
    ("max_test", 0, "max_test must be None"), ("max_test", -1, "max_test must be None"),
    ("epochs", 0, "epochs must be an integer >= 1"), ("batch_size", 0, "batch_size must be"),
    ("schedule", "linear", "schedule must be one of"), ("warmup", 1.0, r"warmup must be a fraction in \[0, 1\)"),
    ("eval_split", "train", "eval_split must be one of"), ("lr", 0.0, "lr must be > 0"),
])
def test_bad_protocol_values_are_refused(field, value, msg):
    with pytest.raises(ValueError, match=msg):
        get_config("tiny", **{field: value})


def test_protocol_fields_exclude_speed_options():
    p = TrainConfig().protocol()
    assert {"epochs", "lr", "schedule", "amp_bf16", "eval_split", "max_test"} <= set(p)
    assert not {"compile", "channels_last", "teacher_cache", "cudnn_benchmark", "eval_batch_size"} & set(p)

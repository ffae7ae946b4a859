"""End-to-end tiny runs on the real data (cemnist_data): the result schema (docs/PROTOCOL.md, "Result files"),
the shared task 0, traces, resume, determinism and clear errors. The finished runs are the session's tiny board
(tests/baselines/conftest.py)."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from cemnist_baselines import seeding, trainer
from cemnist_baselines.artifacts import read_safetensors
from cemnist_baselines.checkpoints import load_checkpoint, remove_task_checkpoints, task_checkpoints, trace_epochs
from cemnist_baselines.methods import Method
from cemnist_baselines.registry import BUILTIN_METHODS, METHOD_ORDER
from cemnist_baselines.runner import expand_methods, run_many, schedule
from cemnist_baselines.devices import resolve_device
from cemnist_baselines.trainer import run_one

T = 5  # tasks of the 2-2 release


@pytest.mark.parametrize("method", BUILTIN_METHODS)
def test_end_to_end_result_schema(tiny_runs, tiny_cfg, method):
    out, res = tiny_runs
    r = json.loads((out / f"{method}-2-2-overlap-seed0.json").read_text())
    assert r == res[method]
    assert r["schema"] == "cemnist-baselines-result/2"
    assert (r["method"], r["seed"], r["setting"], r["mode"], r["preset"]) == (method, 0, "2-2", "overlap", "tiny")
    assert r["config"]["epochs"] == 1 and r["config"]["compile"] is False
    assert r["tasks"] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]] and r["class_order"] == list(range(10))
    assert r["dataset"]["version"] and all(len(h) == 64 for h in r["dataset"]["content_sha256"].values())
    assert r["env"]["device"] == "cpu" and r["env"]["torch"] == torch.__version__
    assert r["package_version"]
    n_steps = 1 if method == "joint" else T
    assert len(r["steps"]) == n_steps == len(r["wall_time_per_task_s"]) == len(r["R"]["future_bg"]) == len(r["R"]["future_ignore"])
    ev = r["evaluation"]
    n_test = tiny_cfg.max_test
    assert ev["split"] == "test" and ev["num_images"] == n_test == 8 and ev["pool_num_images"] == 5000
    assert ev["pool_configs"] == ["overlap-task4"] and ev["headline_view"] == "future_bg"
    for i, s in enumerate(r["steps"]):
        seen = len(s["classes_seen"])
        assert len(s["confusion"]) == 11 and all(len(row) == 11 for row in s["confusion"])
        # every step is scored on the same pool, in the full label space: every pixel of it is counted
        assert sum(map(sum, s["confusion"])) == ev["num_pixels"] == n_test * 60 * 60
        assert set(s["views"]) == {"future_bg", "future_ignore"}
        assert len(s["iou_per_label"]) == 11
        assert all(v is None for v in s["iou_per_label"][seen + 1:])   # unseen labels
        assert 0.0 <= s["miou_bg"] <= 1.0
    for view in ("future_bg", "future_ignore"):
        R, f = r["R"][view], r["final"][view]
        assert all(len(row) == T for row in R)
        if method != "joint":
            assert [s["task"] for s in r["steps"]] == list(range(T))
            assert R[0][1] is None and R[T - 1][0] is not None
            # every digit of tasks 0-3 that the pool holds: its 8 images show no digit 0 (label 1)
            in_pool = {str(d) for d in range(8) if sum(r["steps"][0]["confusion"][d + 1]) > 0}
            assert in_pool == {str(d) for d in range(1, 8)}
            assert set(f["forgetting_class_each"]) == in_pool
            assert set(f["forgetting_task_each"]) == {str(k) for k in range(T - 1)}
        else:
            # same image-steps: 5 tasks x 1 epoch x 16 images = 1 epoch x 80 joint images (max_train x 5)
            assert r["steps"][0]["epochs"] == 1 and r["steps"][0]["classes_seen"] == list(range(10))
            assert f["forgetting_task"] is None and f["forgetting_class"] is None
        for k in ("miou_bg", "miou", "old", "new", "old_bg", "new_bg", "first", "first_bg", "later", "later_bg",
                  "avg_inc_miou_bg", "avg_inc_miou", "forgetting_task", "forgetting_task_each", "forgetting_class",
                  "forgetting_class_each", "task0_miou_bg"):
            assert k in f
    assert r["protocol"]["epochs"] == 1 and "compile" not in r["protocol"] and r["precision"] == "fp32"
    assert len(r["run_id"]) == 16


def test_task0_is_shared_and_identical(tiny_runs):
    out, res = tiny_runs
    incremental = [m for m in BUILTIN_METHODS if m != "joint"]
    ck = {m: load_checkpoint(out / "checkpoints" / f"{m}-2-2-overlap-seed0" / "task0.safetensors")[0]
          for m in incremental}
    assert res["naive"]["shared_task0"] is False  # naive trained the task 0 the others share
    for m in (m for m in incremental if m != "naive"):
        assert res[m]["shared_task0"] is True
        assert res[m]["steps"][0] == res["naive"]["steps"][0]
        assert all(torch.equal(ck[m][k], ck["naive"][k]) for k in ck["naive"])
    # later tasks differ between methods (different losses / head init)
    last = {m: load_checkpoint(out / "checkpoints" / f"{m}-2-2-overlap-seed0" / "task4.safetensors")[0]
            for m in ("naive", "kd", "mib")}
    assert not torch.equal(last["naive"]["enc1.0.weight"], last["kd"]["enc1.0.weight"])
    assert not torch.equal(last["naive"]["head.bias"], last["mib"]["head.bias"])


def test_trace_file(tiny_runs, tiny_cfg):
    out, _ = tiny_runs
    n = tiny_cfg.trace_panel
    t, meta = read_safetensors(out / "mib-2-2-overlap-seed0.trace.safetensors")
    assert meta["result"] == "mib-2-2-overlap-seed0.json" and meta["method"] == "mib" and meta["seed"] == "0"
    assert meta["run_id"] == json.loads((out / "mib-2-2-overlap-seed0.json").read_text())["run_id"]
    assert t["epoch_confusion"].shape == (T, 11, 11) and t["epoch_confusion"].dtype == torch.int64
    assert t["epoch_task"].tolist() == list(range(T)) and t["epoch_index"].tolist() == [1] * T
    assert n == 4 and t["panel_images"].shape == (n, 60, 60) and t["panel_images"].dtype == torch.uint8
    assert t["panel_full_masks"].shape == (n, 60, 60)
    assert t["panel_pred"].shape == (T, n, 60, 60) and t["panel_pred"].dtype == torch.uint8
    assert int(t["panel_pred"].max()) <= 10


def _weights(out, method, seed, step):
    return load_checkpoint(out / "checkpoints" / f"{method}-2-2-overlap-seed{seed}" / f"task{step}.safetensors")[0]


def test_resume_reads_checkpoints_under_their_older_name(tmp_path, tiny_runs, monkeypatch, tiny_cfg):
    """Earlier versions named a run's per-task checkpoints ``step{i}.safetensors``: ``--resume`` continues after
    the last of them and writes ``task{i}`` from there; ``task{i}`` wins over a ``step{i}`` of the same task;
    a fresh run removes both names."""
    src, res = tiny_runs
    stem = "mib-2-2-overlap-seed0"
    ck = tmp_path / "checkpoints" / stem
    ck.mkdir(parents=True)
    for i in range(3):
        shutil.copy(src / "checkpoints" / stem / f"task{i}.safetensors", ck / f"step{i}.safetensors")
    calls = []
    real = trainer.train_task
    monkeypatch.setattr(trainer, "train_task", lambda ctx, **kw: (calls.append(kw["t"]), real(ctx, **kw))[1])
    again = run_one(method="mib", seed=0, cfg=tiny_cfg, out_dir=tmp_path, progress=False, device="cpu", resume=True)
    assert calls == [3, 4]
    assert again["steps"] == res["mib"]["steps"] and again["final"] == res["mib"]["final"]
    assert sorted(p.name for p in ck.iterdir()) == ["step0.safetensors", "step1.safetensors", "step2.safetensors",
                                                    "task3.safetensors", "task4.safetensors"]
    shutil.copy(ck / "task3.safetensors", ck / "task2.safetensors")
    found = task_checkpoints(ck)
    assert list(found) == [0, 1, 2, 3, 4]
    assert found[2].name == "task2.safetensors" and found[1].name == "step1.safetensors"
    (ck / "notes.txt").write_text("mine")
    remove_task_checkpoints(ck)
    assert [p.name for p in ck.iterdir()] == ["notes.txt"] and task_checkpoints(tmp_path / "missing") == {}


def test_determinism_same_seed_and_seed_matters(tmp_path, tiny_runs, tiny_cfg):
    out, res = tiny_runs  # computed with --trace and in a shared folder: neither may change the numbers
    a = run_one(method="kd", seed=0, cfg=tiny_cfg, out_dir=tmp_path, progress=False, device="cpu")
    assert a["shared_task0"] is False  # computed its own task 0 here
    assert a["steps"] == res["kd"]["steps"] and a["final"] == res["kd"]["final"]
    wa, wb = _weights(tmp_path, "kd", 0, 4), _weights(out, "kd", 0, 4)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # the seed drives init and shuffling
    g = [seeding.make_generator(s, torch.device("cpu"), "init") for s in (0, 0, 1)]
    w = [trainer.SimpleSegNet(3, generator=x).enc1[0].weight for x in g]
    assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])
    p = [torch.randperm(100, generator=seeding.make_generator(s, torch.device("cpu"), "shuffle", 0)) for s in (0, 1)]
    assert not torch.equal(p[0], p[1])


def test_resume_equals_uninterrupted(tmp_path, tiny_runs, tiny_cfg, monkeypatch):
    full = tiny_runs[1]["mib"]
    real = trainer.train_task

    def crash_at_task3(ctx, **kw):
        if kw["t"] == 3:
            raise KeyboardInterrupt("simulated interruption")
        return real(ctx, **kw)

    monkeypatch.setattr(trainer, "train_task", crash_at_task3)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_one(method="mib", seed=0, cfg=tiny_cfg, out_dir=out, progress=False, device="cpu")
    assert sorted(p.name for p in (out / "checkpoints" / "mib-2-2-overlap-seed0").iterdir()) == \
        ["task0.safetensors", "task1.safetensors", "task2.safetensors"]
    assert not (out / "mib-2-2-overlap-seed0.json").exists()
    calls = []
    monkeypatch.setattr(trainer, "train_task", lambda ctx, **kw: (calls.append(kw["t"]), real(ctx, **kw))[1])
    res = run_one(method="mib", seed=0, cfg=tiny_cfg, out_dir=out, progress=False, device="cpu", resume=True)
    assert calls == [3, 4]
    assert res["steps"] == full["steps"] and res["final"] == full["final"] and res["R"] == full["R"]
    wf, wr = _weights(tiny_runs[0], "mib", 0, 4), _weights(out, "mib", 0, 4)
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
    # resuming a finished run returns it without training; a different config is refused
    calls.clear()
    again = run_one(method="mib", seed=0, cfg=tiny_cfg, out_dir=out, progress=False, device="cpu", resume=True)
    assert calls == [] and again["final"] == res["final"]
    with pytest.raises(ValueError, match=r"holds a run with another config \(fields \['lr'\]\)"):
        run_one(method="mib", seed=0, cfg=tiny_cfg.replace(lr=1e-3), out_dir=out, progress=False, device="cpu", resume=True)


class _Exploding(Method):
    def loss(self, z, y, t, *, c_old, kd_lambda):
        return super().loss(z, y, t, c_old=c_old, kd_lambda=kd_lambda) * float("nan")


def test_nan_loss_aborts_naming_method_task_step(tmp_path, tiny_cfg):
    with pytest.raises(FloatingPointError, match=r"method 'exploding', task 1, epoch 1, step 0"):
        run_one(method=_Exploding("exploding"), seed=0, cfg=tiny_cfg, out_dir=tmp_path, progress=False, device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")


def test_bad_values_are_clear_errors(tmp_path, tiny_cfg):
    with pytest.raises(ValueError, match="unknown method 'ewc'"):
        expand_methods(["naive", "ewc"])
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*63\), got -1"):
        run_many(methods="naive", seeds=[-1], cfg=tiny_cfg, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="seed must be"):
        run_one(method="naive", seed=True, cfg=tiny_cfg, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown setting '3-3'"):
        run_one(method="naive", seed=0, cfg=tiny_cfg.replace(setting="3-3"), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="built for setting '2-2'"):
        run_one(method="naive", seed=0, cfg=tiny_cfg.replace(setting="4-2"), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown mode 'random'"):
        run_one(method="naive", seed=0, cfg=tiny_cfg.replace(mode="random"), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        run_many(methods="naive", seeds=[0], cfg=tiny_cfg, out_dir=tmp_path, jobs=0, progress=False)


def test_schedule_starts_one_incremental_run_per_seed():
    assert expand_methods("all") == list(METHOD_ORDER) and set(METHOD_ORDER) == set(BUILTIN_METHODS)
    assert expand_methods(["kd", "all"])[:2] == ["kd", "naive"] and len(expand_methods(["kd", "all"])) == 10
    assert schedule(["naive", "kd", "mib", "joint"], [0, 1]) == [
        ("naive", 0), ("naive", 1), ("joint", 0), ("joint", 1), ("kd", 0), ("mib", 0), ("kd", 1), ("mib", 1)]


def test_trace_every_auto_records_about_4_frames_per_task(tmp_path, tiny_cfg):
    cfg = tiny_cfg.replace(epochs=3, max_train=8, max_test=4, trace_every=2)
    run_one(method="joint", seed=0, cfg=cfg, out_dir=tmp_path / "a", progress=False, device="cpu", trace=True)
    t, _ = read_safetensors(tmp_path / "a" / "joint-2-2-overlap-seed0.trace.safetensors")
    assert t["epoch_index"].tolist() == [2, 3] and t["panel_pred"].shape[0] == 1  # every 2nd + the last
    assert trace_epochs(100, 0) == [25, 50, 75, 100]  # auto: 4 frames per task (each scores the pool)
    assert trace_epochs(10, 0) == [3, 6, 9, 10]
    assert trace_epochs(7, 3) == [3, 6, 7] and trace_epochs(2, 0) == [1, 2]

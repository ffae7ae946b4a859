"""The CUDA paths of the trainer, checked on a CPU where a CPU can check them (fake device moves, ``meta`` tensors,
monkeypatched ``torch.cuda``), and on a GPU (``gpu`` marker) where only a GPU shows them.

1. method state on one declared device (replay ``--resume`` on CUDA); 2. IEEE fp32 on CUDA and what ``env``
records of it; 3. the batch order and replay draws do not depend on the device; 4. ``--deterministic``, the GPU
in the task-0 key; 5. no host syncs in the step (PLOP, replay); 6. ``--jobs`` over several GPUs."""
from __future__ import annotations

import json
import os
import shutil
import types
from pathlib import Path

import pytest
import torch
from torch.utils._pytree import tree_leaves

from cemnist_baselines import backends, checkpoints, data, devices, methods, optim_step, runner, seeding, trainer
from cemnist_baselines.artifacts import env_info
from cemnist_baselines.checkpoints import load_checkpoint
from cemnist_baselines.config import TrainConfig, complete_config, get_config
from cemnist_baselines.methods import Method, TaskContext
from cemnist_baselines.registry import METHODS

SMALL = dict(epochs=1, max_train=16, max_test=8, batch_size=8, trace_panel=2)  # 2 steps per task
ROOT = Path(__file__).resolve().parents[2]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class Elsewhere(torch.Tensor):
    """A CPU tensor posing as one on ``cuda:0`` (a fake device move): it reports that device, any op mixing it with
    a plain tensor fails as a device mismatch does, and ``.to(...)`` / ``.cpu()`` give a plain tensor."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func == torch.Tensor.device.__get__:
            return torch.device("cuda", 0)
        if func in (torch.Tensor.to, torch.Tensor.cpu):
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **kwargs).as_subclass(torch.Tensor)
        leaves = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        if any(type(t) is torch.Tensor and t.dim() > 0 for t in leaves) and any(isinstance(t, cls) for t in leaves):
            raise RuntimeError(f"{func.__name__}: expected all tensors to be on the same device (cuda:0 and cpu)")
        return super().__torch_function__(func, types, args, kwargs)


def elsewhere(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.as_subclass(Elsewhere) for k, v in state.items()}


@pytest.fixture
def fake_gpu(monkeypatch):
    """torch.cuda as a machine with one 'Fake H200' would answer (no CUDA call is made)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Fake H200")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (9, 0))
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91002)


@pytest.fixture(scope="module")
def small_cfg(cemnist_cache):
    return get_config("tiny", **SMALL)


# ----------------------------------------------------------------------------- 1. method state on one device
def _replay_ctx(task: int, state: dict[str, torch.Tensor]) -> TaskContext:
    g = torch.Generator().manual_seed(task)
    masks = torch.zeros(12, 60, 60, dtype=torch.uint8)
    digits = [2 * task, 2 * task + 1]
    for i in range(12):
        masks[i, :5, :5] = digits[i % 2] + 1
    images = torch.randint(0, 256, (12, 60, 60), dtype=torch.uint8, generator=g)
    tasks = [[0, 1], [2, 3], [4, 5]]
    return TaskContext(task=task, tasks=tasks, model=torch.nn.Identity(), old_model=None, images=images,
                       masks=masks, lut=torch.zeros(256, dtype=torch.int64), c_old=1, seed=0,
                       device=torch.device("cpu"), cfg=None, state=state)


def test_replay_memory_from_another_device_is_moved_to_the_run_device():
    """Replay ``--resume`` on CUDA: the restored memory and this task's images on different devices used to meet
    in ``torch.cat``. Here the memory arrives on (fake) cuda:0 and the images are on the CPU, the declared device."""
    replay = METHODS["replay"]
    ref: dict[str, torch.Tensor] = {}
    replay.after_task(_replay_ctx(0, ref))
    replay.after_task(_replay_ctx(1, ref))
    state = elsewhere({k: v.clone() for k, v in ref.items()})  # the same memory, restored "on the GPU"
    with pytest.raises(RuntimeError, match="same device"):     # the fake is faithful: mixing fails
        torch.cat([state["replay.images"], ref["replay.images"]])
    replay.after_task(_replay_ctx(1, state))
    for k in ("replay.images", "replay.masks", "replay.digit"):
        assert type(state[k]) is torch.Tensor and state[k].device == torch.device("cpu"), k
        assert torch.equal(state[k], ref[k]), k


def test_the_trainer_keeps_hook_state_on_the_run_device():
    state = {"a": torch.ones(3).as_subclass(Elsewhere), "b": torch.zeros(2)}
    b = state["b"]
    methods.state_to_device(state, torch.device("cpu"))
    assert type(state["a"]) is torch.Tensor and state["a"].device == torch.device("cpu")
    assert state["b"] is b  # already there: untouched


class _StrayState(Method):
    """A method whose hooks leave their state on another device; its loss checks where the state is."""

    def before_task(self, ctx):  # type: ignore[override]
        ctx.state["stray.before"] = torch.ones(2).as_subclass(Elsewhere)

    def after_task(self, ctx):  # type: ignore[override]
        ctx.state["stray.after"] = torch.full((2,), float(ctx.task)).as_subclass(Elsewhere)

    def feature_loss(self, z, y, t, feats, old_feats, *, c_old, kd_lambda, state):  # type: ignore[override]
        assert all(type(v) is torch.Tensor and v.device == z.device for v in state.values()), state
        return super().feature_loss(z, y, t, feats, old_feats, c_old=c_old, kd_lambda=kd_lambda, state=state)


def test_state_left_elsewhere_by_hooks_is_on_the_run_device_in_the_step(tmp_path, small_cfg):
    r = trainer.run_one(method=_StrayState("stray", features=True), seed=0, cfg=small_cfg, out_dir=tmp_path,
                        device="cpu", progress=False)
    assert len(r["steps"]) == 5
    _, extra, _, _ = load_checkpoint(tmp_path / "checkpoints" / "stray-2-2-overlap-seed0" / "task4.safetensors")
    assert extra["method.stray.after"].tolist() == [4.0, 4.0]


def test_replay_resume_with_state_arriving_on_another_device(tmp_path, small_cfg, monkeypatch):
    """The resume path of (1) above on a CPU: the checkpoint's method state arrives on (fake) cuda:0, the
    images on the CPU; the resumed run equals the uninterrupted one."""
    full = trainer.run_one(method="replay", seed=0, cfg=small_cfg, out_dir=tmp_path / "full", device="cpu",
                           progress=False)
    stem = "replay-2-2-overlap-seed0"
    shutil.copytree(tmp_path / "full" / "checkpoints" / stem, tmp_path / "resumed" / "checkpoints" / stem)
    for i in (3, 4):
        (tmp_path / "resumed" / "checkpoints" / stem / f"task{i}.safetensors").unlink()
    real = checkpoints.load_checkpoint

    def restored_elsewhere(path):
        state, extra, c, prog = real(path)
        return state, {k: (v.as_subclass(Elsewhere) if k.startswith("method.") else v) for k, v in extra.items()}, c, prog

    monkeypatch.setattr(checkpoints, "load_checkpoint", restored_elsewhere)
    again = trainer.run_one(method="replay", seed=0, cfg=small_cfg, out_dir=tmp_path / "resumed", device="cpu",
                            resume=True, progress=False)
    assert again["steps"] == full["steps"] and again["final"] == full["final"]


# ----------------------------------------------------------------------------- 2. IEEE fp32, recorded
def test_a_cuda_run_sets_ieee_fp32_and_env_records_it(fake_gpu, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = backends.backend_record()
    cfg = get_config("long").resolved("cuda")
    assert cfg.precision == "fp32"
    with backends.backend_settings(cfg, torch.device("cuda")):
        env = env_info(torch.device("cuda"))
        assert (env["cuda_conv_fp32"], env["cuda_matmul_fp32"], env["cudnn_allow_tf32"]) == ("ieee", "ieee", False)
        assert env["matmul_precision"] == "highest"
        assert (env["cudnn_benchmark"], env["cudnn_deterministic"], env["deterministic_algorithms"]) == (True, False, False)
        assert env["device_name"] == "Fake H200" and env["cudnn"] == 91002
        if backends._new_api():  # both APIs read the same
            assert torch.backends.cudnn.conv.fp32_precision == "ieee"
            assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    assert backends.backend_record() == before  # restored
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_cpu_runs_leave_the_flags_alone_and_record_them():
    before = backends.backend_record()
    with backends.backend_settings(get_config("long").resolved("cpu"), torch.device("cpu")):
        assert backends.backend_record() == before
    env = env_info(torch.device("cpu"))
    assert {"cuda_conv_fp32", "cuda_matmul_fp32", "cudnn_deterministic", "deterministic_algorithms"} <= set(env)


def test_tf32_resolution_follows_torch():
    assert backends._resolve("tf32", "ieee", "none") == "tf32"
    assert backends._resolve("none", "ieee", "tf32") == "ieee"
    assert backends._resolve("none", "none", "tf32") == "tf32"
    assert backends._resolve("none", "none", "none") == "ieee"


# ----------------------------------------------------------------------------- 3. batch order independent of device
class _Split:
    """A uint8 split that claims to live on another device (``meta``): indexing serves the CPU data."""

    def __init__(self, data: torch.Tensor, device: torch.device):
        self.data, self.device, self.shape = data, device, data.shape

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        return self.data[idx]


def _coded(n: int) -> torch.Tensor:
    x = torch.zeros(n, 60, 60, dtype=torch.uint8)
    x[:, 0, 0] = torch.arange(n) % 256
    x[:, 0, 1] = torch.arange(n) // 256
    return x


def _order_seen(images, masks, device_of_losses: torch.device, gen: torch.Generator) -> list[int]:
    seen: list[int] = []

    def step(xb, yb, tb=None):
        seen.extend((xb[:, 0, 0].long() + 256 * xb[:, 0, 1].long()).tolist())
        return torch.zeros((), device=device_of_losses)

    optim_step.train_epoch(step, images, masks, batch_size=7, generator=gen)
    return seen


def test_the_batch_order_is_the_same_on_any_device(monkeypatch):
    n = 300
    x, y = _coded(n), torch.zeros(n, 60, 60, dtype=torch.uint8)
    on_cpu = _order_seen(x, y, torch.device("cpu"), seeding.make_generator(0, torch.device("cpu"), "shuffle", 1))
    moved = []

    def fake_move(t, device):  # the index tensor "goes to" the other device; the fake split reads it on the CPU
        moved.append((t.device.type, device.type, t.dtype, t.numel()))
        return t

    monkeypatch.setattr(optim_step, "to_device", fake_move)
    meta = torch.device("meta")
    other = _order_seen(_Split(x, meta), _Split(y, meta), meta,
                        seeding.make_generator(0, torch.device("cpu"), "shuffle", 1))
    assert other == on_cpu and sorted(on_cpu) == list(range(n))
    assert moved == [("cpu", "meta", torch.int64, n)]  # one move per epoch, drawn on the CPU


def test_a_device_generator_is_refused():
    fake = types.SimpleNamespace(device=torch.device("cuda", 0))
    with pytest.raises(ValueError, match=r"needs a CPU generator .* got one on cuda:0"):
        optim_step.epoch_order(10, generator=fake)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- 4. determinism, task-0 key
@pytest.mark.parametrize("device, det, bench", [("cpu", False, False), ("cuda", True, False)])
def test_deterministic_resolves_per_device(device, det, bench):
    cfg = get_config("default", deterministic=True).resolved(device)
    assert (cfg.deterministic, cfg.cudnn_benchmark) == (det, bench)
    assert cfg.protocol() == get_config("default").protocol()  # a speed field: never a row key


def test_deterministic_flags_on_cuda(fake_gpu, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cfg = get_config("tiny", deterministic=True).resolved("cuda")
    with backends.backend_settings(cfg, torch.device("cuda")):
        rec = backends.backend_record()
        assert (rec["cudnn_benchmark"], rec["cudnn_deterministic"]) == (False, True)
        assert (rec["deterministic_algorithms"], rec["deterministic_warn_only"]) == (True, True)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == backends.CUBLAS_WORKSPACE
    assert not torch.are_deterministic_algorithms_enabled()


def test_cli_deterministic_reaches_the_config(monkeypatch, cemnist_cache, tmp_path):
    from cemnist_baselines import cli

    seen = {}

    def fake_run_many(**kw):
        seen.update(kw)
        raise ValueError("stop here")

    monkeypatch.setattr(runner, "run_many", fake_run_many)
    assert cli.main(["run", "--method", "naive", "--preset", "tiny", "--deterministic", "--out", str(tmp_path)]) == 2
    assert seen["cfg"].deterministic is True
    assert get_config("tiny").deterministic is False


def test_the_task0_key_names_the_gpu(fake_gpu, monkeypatch, small_cfg):
    dev = torch.device("cuda")
    key = lambda: checkpoints.task0_key(small_cfg, 0, dev, False, {"x": "y"})  # noqa: E731
    k0 = key()
    assert key() == k0
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Fake H100")
    k1 = key()
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    assert len({k0, k1, key()}) == 3
    assert key() != checkpoints.task0_key(small_cfg.replace(deterministic=True), 0, dev, False, {"x": "y"})


def test_results_from_before_the_deterministic_field_still_match():
    """Committed results (and checkpoints) have no ``deterministic``: they ran without it, so they compare equal."""
    r = json.loads((ROOT / "results" / "v1" / "naive-2-2-overlap-seed0.json").read_text())
    assert "deterministic" not in r["config"]
    assert complete_config(r["config"]) == TrainConfig.from_dict(r["config"]).to_dict()
    assert complete_config(r["config"])["deterministic"] is False
    assert complete_config(r["config"]) == get_config("default").resolved("cpu").to_dict()


# ----------------------------------------------------------------------------- 5. no host syncs in the step
def test_plop_loss_reads_no_state_on_the_host():
    """PLOP's step used to read ``float(state["plop.max_entropy"])`` (a device->host sync, a graph break):
    with that entry on ``meta`` (unreadable) the loss still computes."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 5, 60, 60, generator=g)
    t = torch.randn(2, 3, 60, 60, generator=g)
    y = torch.randint(0, 5, (2, 60, 60), generator=g)
    shapes = {"enc1.pre": 60, "enc2.pre": 30, "enc3.pre": 15, "dec1.pre": 30, "dec2": 60}
    feats = {k: torch.randn(2, 4, s, s, generator=g) for k, s in shapes.items()}
    old = {k: torch.randn(2, 4, s, s, generator=g) for k, s in shapes.items()}
    state = {"plop.thresholds": torch.full((3,), 0.5), "plop.max_entropy": torch.empty((), dtype=torch.float64,
                                                                                        device="meta")}
    loss = METHODS["plop"].feature_loss(z, y, t, feats, old, c_old=3, kd_lambda=10.0, state=state)
    assert torch.isfinite(loss)


# ----------------------------------------------------------------------------- 6. several GPUs
def test_workers_are_spread_over_the_gpus():
    cuda_ = torch.device("cuda")
    assert [str(runner.worker_device(cuda_, i, 3)) for i in range(5)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:0",
                                                                          "cuda:1"]
    assert str(runner.worker_device(torch.device("cuda:1"), 4, 3)) == "cuda:1"   # an explicit GPU: every worker
    assert str(runner.worker_device(torch.device("cpu"), 4, 0)) == "cpu"
    with pytest.raises(ValueError, match=r"n_devices must be an integer >= 1 for --device cuda, got 0"):
        runner.worker_device(cuda_, 0, 0)
    assert runner.compile_threads(4, cpu_count=16) == 4 and runner.compile_threads(32, cpu_count=16) == 1


def test_worker_setup_sets_device_and_compile_threads(monkeypatch):
    monkeypatch.setattr(runner, "_DEVICE", None)
    monkeypatch.delenv("TORCHINDUCTOR_COMPILE_THREADS", raising=False)
    assert runner.setup_worker(3, device="cuda", n_devices=2, inductor_threads=0) == "cuda:1"
    assert "TORCHINDUCTOR_COMPILE_THREADS" not in os.environ
    assert runner.setup_worker(2, device="cuda", n_devices=2, inductor_threads=8) == "cuda:0"
    assert os.environ["TORCHINDUCTOR_COMPILE_THREADS"] == "8"
    calls = []
    monkeypatch.setattr(runner, "run_one", lambda **kw: calls.append(kw["device"]) or {})
    monkeypatch.setattr(runner, "_QUEUE", types.SimpleNamespace(put=lambda u: None))
    runner._worker({"method": "naive", "seed": 0, "device": "cuda"})
    assert calls == ["cuda:0"]


def test_the_pool_gets_the_gpu_count_and_compile_threads(monkeypatch, small_cfg):
    got = {}

    class _Stop(Exception):
        pass

    class FakePool:
        def __init__(self, **kw):
            got.update(kw)

        def submit(self, *a, **k):
            raise _Stop()

        def shutdown(self, **k):
            pass

    monkeypatch.setattr(runner, "ProcessPoolExecutor", FakePool)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    with pytest.raises(_Stop):
        runner._run_pool([("naive", 0), ("kd", 0)], {}, jobs=2, dev=torch.device("cuda"),
                         cfg=small_cfg.replace(compile=True), bar=None, results={})
    threads, _, _, _, device, n_devices, inductor = got["initargs"]
    assert (got["max_workers"], threads, device, n_devices) == (2, 1, "cuda", 3)
    assert inductor == runner.compile_threads(2)


def test_a_gpu_that_is_not_there_fails_before_any_worker_starts(fake_gpu, monkeypatch, tmp_path, capsys,
                                                                 cemnist_cache):
    from cemnist_baselines.cli import main

    with pytest.raises(ValueError, match=r"--device cuda:7: CUDA device index must be in \[0, 0\] on this "
                                         r"machine, got 7; its 1 device\(s\): cuda:0 \(Fake H200\)"):
        devices.resolve_device("cuda:7")
    assert devices.resolve_device("cuda:0") == torch.device("cuda", 0)
    monkeypatch.setattr(runner, "_run_pool", lambda *a, **k: pytest.fail("a worker pool was started"))
    rc = main(["run", "--method", "naive", "kd", "--preset", "tiny", "--device", "cuda:7", "--jobs", "2",
               "--out", str(tmp_path), "--no-progress"])
    assert rc == 2 and "cuda:0 (Fake H200)" in capsys.readouterr().err


# ----------------------------------------------------------------------------- on a GPU
@pytest.mark.gpu
@cuda
def test_gpu_replay_resume(tmp_path, small_cfg):
    """(1) above for real: replay resumed from its task-2 checkpoint on CUDA runs to the end (deterministic
    mode, so the resumed run must equal the uninterrupted one)."""
    cfg = small_cfg.replace(deterministic=True)
    full = trainer.run_one(method="replay", seed=0, cfg=cfg, out_dir=tmp_path / "full", device="cuda", progress=False)
    stem = "replay-2-2-overlap-seed0"
    shutil.copytree(tmp_path / "full" / "checkpoints" / stem, tmp_path / "resumed" / "checkpoints" / stem)
    for i in (3, 4):
        (tmp_path / "resumed" / "checkpoints" / stem / f"task{i}.safetensors").unlink()
    again = trainer.run_one(method="replay", seed=0, cfg=cfg, out_dir=tmp_path / "resumed", device="cuda",
                            resume=True, progress=False)
    assert len(again["steps"]) == 5
    assert again["steps"] == full["steps"]


@pytest.mark.gpu
@cuda
def test_gpu_fp32_is_ieee_and_recorded(tmp_path, small_cfg):
    r = trainer.run_one(method="naive", seed=0, cfg=small_cfg, out_dir=tmp_path, device="cuda", progress=False)
    assert r["precision"] == "fp32" and r["env"]["cuda_conv_fp32"] == "ieee" and r["env"]["cudnn_allow_tf32"] is False
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(8, 32, 60, 60, generator=g), torch.randn(32, 32, 3, 3, generator=g)
    ref = torch.nn.functional.conv2d(x.double(), w.double(), padding=1)
    with backends.backend_settings(small_cfg.resolved("cuda"), torch.device("cuda")):
        out = torch.nn.functional.conv2d(x.cuda(), w.cuda(), padding=1).double().cpu()
    # TF32 (10-bit mantissa) errs by about 1e-3 relative here; IEEE fp32 by about 1e-6
    assert float((out - ref).abs().max() / ref.abs().max()) < 1e-5


@pytest.mark.gpu
@cuda
def test_gpu_batch_order_and_replay_draws_equal_the_cpus(tmp_path, small_cfg, monkeypatch):
    orders: dict[str, list[list[int]]] = {}
    draws: dict[str, list[bytes]] = {}
    real_order, real_mix = optim_step.epoch_order, METHODS["replay"].mix_batch
    which = ["cpu"]

    def order(n, *, generator):
        o = real_order(n, generator=generator)
        orders.setdefault(which[0], []).append(o.tolist())
        return o

    def mix(self, x, y, *, state, generator):
        assert generator.device.type == "cpu" and state["replay.images"].device == x.device
        draws.setdefault(which[0], []).append(bytes(generator.get_state().numpy()))
        return real_mix(x, y, state=state, generator=generator)

    monkeypatch.setattr(optim_step, "epoch_order", order)
    monkeypatch.setattr(type(METHODS["replay"]), "mix_batch", mix)
    for dev in ("cpu", "cuda"):
        which[0] = dev
        trainer.run_one(method="replay", seed=0, cfg=small_cfg, out_dir=tmp_path / dev, device=dev, progress=False)
    assert orders["cuda"] == orders["cpu"] and len(orders["cpu"]) == 5
    assert draws["cuda"] == draws["cpu"] and len(draws["cpu"]) == 8  # 4 tasks x 2 steps


@pytest.mark.gpu
@cuda
def test_gpu_deterministic_reruns_are_bit_identical(tmp_path, small_cfg):
    cfg = small_cfg.replace(deterministic=True)
    runs = [trainer.run_one(method=m, seed=0, cfg=cfg, out_dir=tmp_path / f"{m}{i}", device="cuda", progress=False)
            for m in ("mib", "plop") for i in (0, 1)]
    assert runs[0]["steps"] == runs[1]["steps"] and runs[2]["steps"] == runs[3]["steps"]
    assert runs[0]["env"]["cudnn_deterministic"] is True and runs[0]["config"]["cudnn_benchmark"] is False


@pytest.mark.gpu
@cuda
def test_gpu_training_steps_do_not_sync_the_host(small_cfg, cemnist_cache):
    """A replay step (memory on the GPU, indices from a CPU generator) and a PLOP step (thresholds on the GPU)
    run under ``torch.cuda.set_sync_debug_mode("error")``."""
    import copy

    from cemnist_baselines.data import load_task_data
    from cemnist_baselines.model import SimpleSegNet, grow_head

    dev = torch.device("cuda")
    cfg = small_cfg.resolved("cuda")
    x, y = load_task_data(task=1, split="train", mode="overlap", limit=16, device=dev)
    lut, _ = data.label_maps([[0, 1], [2, 3]], 1, dev)
    state = {"replay.images": x[:6].clone(), "replay.masks": y[:6].clone(),
             "plop.thresholds": torch.full((3,), 0.5, device=dev),
             "plop.max_entropy": torch.tensor(1.6, dtype=torch.float64, device=dev)}
    for name in ("replay", "plop"):
        meth = METHODS[name]
        model = SimpleSegNet(3, generator=torch.Generator().manual_seed(0))
        old = copy.deepcopy(model).eval().requires_grad_(False).to(dev)
        grow_head(model, 2, generator=torch.Generator().manual_seed(1))
        model.to(dev)
        step = optim_step.make_step(model, old if meth.uses_old_model else None,
                                 meth.feature_loss if meth.features else meth.loss, lut, cfg=cfg, c_old=3, device=dev,
                                 total_steps=4, features=meth.features, state=state)
        if name == "replay":
            step = optim_step.mixing_step(step, meth, state, torch.Generator().manual_seed(0))
        optim_step.train_epoch(step, x, y, batch_size=8, generator=torch.Generator().manual_seed(0))  # warm-up
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            optim_step.train_epoch(step, x, y, batch_size=8, generator=torch.Generator().manual_seed(1))
        finally:
            torch.cuda.set_sync_debug_mode("default")


@pytest.mark.gpu
@cuda
def test_gpu_jobs_spread_and_finish(tmp_path, small_cfg):
    res = runner.run_many(methods=["naive", "kd"], seeds=[0], cfg=small_cfg, out_dir=tmp_path, preset="tiny",
                          device="cuda", jobs=2, progress=False)
    assert [r["method"] for r in res] == ["naive", "kd"] and all(r["env"]["device"] == "cuda" for r in res)

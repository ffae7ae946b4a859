"""The one shared trainer: every method is a loss on top of :func:`run_one`.

Speed: each split lives on the device as uint8, batches are gathered by a permutation drawn once per epoch
from a seeded CPU ``torch.Generator`` (so every device sees the same batches) and moved to the device, and
converted to float inside the (optionally compiled, optionally CUDA-graph-captured) step. No global RNG is
used: init, head growth, shuffling and replay draws each get their own generator, derived from the run seed
and the task index, so a resumed run replays exactly.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .artifacts import atomic_save_safetensors, atomic_write_text, env_info, git_commit
from .backends import apply_backend_settings, backend_settings
from .checkpoints import RunProgress, Trace, shared_task0_lock, shared_task0_path, task0_key
from .config import TrainConfig, complete_config
from .data import (config_name, content_hashes, dataset_info, eval_pool_configs, label_maps, load_eval_pool,
                   load_joint_train, load_task_data, resolve_tasks)
from .inference import confusion, predict_labels, teacher_logits, teacher_outputs
from .methods import Method, TaskContext, overrides, state_to_device
from .metrics import step_metrics
from .model import SimpleSegNet, grow_head
from .registry import METHODS, get_method, is_builtin, method_source
from .results import load_result, make_result, result_json_text
from .seeding import make_generator

ProgressCb = Callable[[float], None]


# ----------------------------------------------------------------------------- small helpers
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` without CUDA is a RuntimeError; ``cuda:N`` with N not a
    device of this machine is a ValueError naming the devices there are."""
    d = str(device)
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(d)  # RuntimeError for malformed strings
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"--device {d} was requested but CUDA is not available (torch {torch.__version__}, "
            f"built with CUDA {torch.version.cuda}); use --device cpu or --device auto"
        )
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {d!r}: use auto, cpu or cuda[:N]")
    if dev.type == "cuda" and dev.index is not None:
        n = torch.cuda.device_count()
        if not 0 <= dev.index < n:
            names = ", ".join(f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(n))
            raise ValueError(f"--device {d}: CUDA device index must be in [0, {n - 1}] on this machine, got "
                             f"{dev.index}; its {n} device(s): {names or 'none'}")
    return dev


def check_seed(seed: Any) -> int:
    """Seeds are non-negative Python ints below 2**63."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    return seed


def check_mode(mode: str) -> str:
    if mode not in ("overlap", "disjoint"):
        raise ValueError(f"unknown mode {mode!r}; choose 'overlap' or 'disjoint'")
    return mode


def trace_epochs(epochs: int, every: int) -> list[int]:
    """1-based epochs whose pool confusion ``--trace`` records: every ``every``-th (0 = auto, about 4 per
    task: each frame scores the whole evaluation pool) and always the last."""
    k = every if every > 0 else max(1, math.ceil(epochs / 4))
    return sorted(set(range(k, epochs + 1, k)) | {epochs})


def run_stem(method: str, setting: str, mode: str, seed: int) -> str:
    """File stem of a run: ``{method}-{setting}-{mode}-seed{seed}``."""
    return f"{method}-{setting}-{mode}-seed{seed}"


# ----------------------------------------------------------------------------- train / eval primitives
def make_scheduler(opt: torch.optim.Optimizer, *, schedule: str, lr: float, warmup: float,
                   total_steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Per-batch learning-rate schedule of one task (``None`` for a constant lr without warm-up).

    ``onecycle``: torch's ``OneCycleLR`` (peak ``lr``, ``pct_start=warmup``, cosine annealing, its default
    momentum cycling of Adam's beta1). ``cosine``: linear warm-up over ``warmup`` of the steps, then cosine
    decay to 0. ``constant``: linear warm-up, then ``lr``."""
    total = max(1, int(total_steps))
    if schedule == "onecycle":
        if warmup <= 0:
            raise ValueError("the onecycle schedule needs warmup > 0 (its pct_start)")
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=warmup)
    n_warm = int(round(warmup * total))
    if schedule == "constant" and n_warm == 0:
        return None

    def factor(i: int) -> float:
        if i < n_warm:
            return (i + 1) / n_warm
        if schedule == "constant":
            return 1.0
        p = (i - n_warm) / max(1, total - n_warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, p)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def make_step(model: SimpleSegNet, old_model: SimpleSegNet | None, loss_fn: Callable[..., torch.Tensor],
              lut: torch.Tensor, *, cfg: TrainConfig, c_old: int, device: torch.device,
              total_steps: int | None = None, lr: float | None = None, label_fn: Callable[..., torch.Tensor] | None = None,
              features: bool = False, state: dict[str, torch.Tensor] | None = None) -> Callable[..., torch.Tensor]:
    """One optimisation step on uint8 batches: ``step(x, y, t=None)``; returns the detached loss (no host sync).

    ``t``: cached old-model outputs of the batch (teacher caching): its logits, or with ``features`` a dict of
    the logits (``"logits"``) and the old feature maps a method caches (``Method.cached_features``); without it
    the frozen ``old_model`` (if any) runs on the batch. ``label_fn(y, t, c_old=)``: a method's label rule, applied to the target channels
    before the loss. ``features``: ``loss_fn`` is a method's ``feature_loss`` and gets the new and old
    model's intermediate maps (:meth:`SimpleSegNet.forward_features`) and ``state``."""
    amp = bool(cfg.amp_bf16)  # bf16 autocast on CUDA and on CPU alike
    apply_backend_settings(cfg, device)  # CUDA: IEEE fp32, cuDNN benchmarking, determinism (run_one restores them)
    if cfg.channels_last:  # in place; values unchanged (checkpoints store contiguous copies)
        model.to(memory_format=torch.channels_last)
        if old_model is not None:
            old_model.to(memory_format=torch.channels_last)

    def fwd_loss(xb: torch.Tensor, yb: torch.Tensor, tb: torch.Tensor | None) -> torch.Tensor:
        x = xb.unsqueeze(1).float().div(255.0)
        y = lut[yb.long()]
        if features:
            return fwd_features(x, y, tb)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            z = model(x)
            t = tb
            if t is None and old_model is not None:
                with torch.no_grad():
                    t = old_model(x)
        if label_fn is not None:
            y = label_fn(y, t.float(), c_old=c_old)
        return loss_fn(z.float(), y, None if t is None else t.float(), c_old=c_old, kd_lambda=cfg.kd_lambda)

    def fwd_features(x: torch.Tensor, y: torch.Tensor, tb: Any) -> torch.Tensor:
        old_feats = None
        t = None
        if isinstance(tb, dict):  # cached: the logits and the maps the method needs, as the old model gave them
            t = tb["logits"]
            old_feats = {k: v for k, v in tb.items() if k != "logits"}
        elif tb is not None:
            t = tb
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            z, feats = model.forward_features(x)
            if old_model is not None:
                with torch.no_grad():
                    t, old_feats = old_model.forward_features(x)
        t = None if t is None else t.float()
        if label_fn is not None:
            y = label_fn(y, t, c_old=c_old)
        return loss_fn(z.float(), y, t, {k: v.float() for k, v in feats.items()},
                       None if old_feats is None else {k: v.float() for k, v in old_feats.items()},
                       c_old=c_old, kd_lambda=cfg.kd_lambda, state=state if state is not None else {})

    fn: Callable[..., torch.Tensor] = fwd_loss
    if cfg.compile:
        fn = torch.compile(fwd_loss, mode="reduce-overhead" if cfg.cuda_graphs else None, dynamic=False)
    if total_steps is None:
        if cfg.schedule != "constant" or cfg.warmup > 0:
            raise ValueError(f"make_step needs total_steps (the task's optimisation steps) for the {cfg.schedule!r} "
                             f"schedule with warm-up {cfg.warmup}")
        total_steps = 1
    peak = cfg.lr if lr is None else lr  # the peak lr of this task (cfg.lr_next for incremental tasks)
    opt = torch.optim.Adam(model.parameters(), lr=peak, **({"fused": True} if device.type == "cuda" else {}))
    sched = make_scheduler(opt, schedule=cfg.schedule, lr=peak, warmup=cfg.warmup, total_steps=total_steps)
    graphs = bool(cfg.compile and cfg.cuda_graphs and device.type == "cuda")

    def step(xb: torch.Tensor, yb: torch.Tensor, tb: torch.Tensor | None = None) -> torch.Tensor:
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        loss = fn(xb, yb, tb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        return loss.detach().clone() if graphs else loss.detach()

    step.optimizer = opt  # type: ignore[attr-defined]
    return step


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimisation steps in one epoch over ``n`` images (the last batch may be partial)."""
    return math.ceil(n / batch_size)


def epoch_order(n: int, *, generator: torch.Generator) -> torch.Tensor:
    """The order of one epoch over ``n`` images: ``torch.randperm`` drawn from the CPU ``generator`` (int64, CPU),
    the same on every device. A generator on another device is a ValueError (CUDA's ``randperm`` is another
    algorithm: a GPU run would not see the CPU board's batches)."""
    if generator.device.type != "cpu":
        raise ValueError(f"epoch_order needs a CPU generator (the batch order must not depend on the device), "
                         f"got one on {generator.device}")
    return torch.randperm(n, generator=generator, device="cpu")


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device`` without waiting for the device (a no-op when it is there)."""
    return t.to(device, non_blocking=True)


def train_epoch(step: Callable[..., torch.Tensor], images: torch.Tensor, masks: torch.Tensor,
                *, batch_size: int, generator: torch.Generator,
                teacher: torch.Tensor | dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """One epoch over a device-resident uint8 split in a random order; per-step losses (device).

    The order is :func:`epoch_order` from the CPU ``generator``, moved to the device once (8 bytes per image):
    the batches are the same on every device. ``teacher``: cached old-model logits aligned with ``images``, or a
    dict of such tensors (logits and feature maps, :func:`teacher_outputs`), gathered with the same indices."""
    n = images.shape[0]
    perm = to_device(epoch_order(n, generator=generator), images.device)
    nb = steps_per_epoch(n, batch_size)
    losses = torch.empty(nb, device=images.device)
    for b in range(nb):
        idx = perm[b * batch_size:(b + 1) * batch_size]
        if teacher is None:
            losses[b] = step(images[idx], masks[idx])
        elif isinstance(teacher, dict):
            losses[b] = step(images[idx], masks[idx], {k: v[idx] for k, v in teacher.items()})
        else:
            losses[b] = step(images[idx], masks[idx], teacher[idx])
    return losses


# ----------------------------------------------------------------------------- one run
def run_one(
    *,
    method: str | Method,
    seed: int,
    cfg: TrainConfig,
    out_dir: str | Path,
    preset: str = "custom",
    device: str | torch.device = "auto",
    resume: bool = False,
    overwrite: bool = False,
    trace: bool = False,
    progress: bool = True,
    progress_cb: ProgressCb | None = None,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Train one method with one seed through every task; write and return the result JSON dict.

    Every step is scored on the same fixed evaluation pool (``cfg.eval_split``; a fixed seeded subset of it
    with ``cfg.max_test``) in the full label space. Files under ``out_dir``: ``{stem}.json``,
    ``{stem}.trace.safetensors`` (with ``trace``), per-task checkpoints in ``checkpoints/{stem}/step{i}.safetensors``
    and the shared task-0 checkpoints in ``checkpoints/_shared/``. ``progress_cb(units)`` receives progress in
    task units (total = #tasks). On CUDA the run sets the backend flags of :mod:`cemnist_baselines.backends`
    (IEEE fp32, cuDNN benchmarking, ``cfg.deterministic``) and restores the previous ones when it ends.
    """
    dev = resolve_device(device)
    current = torch.cuda.device(dev) if dev.type == "cuda" and dev.index is not None else contextlib.nullcontext()
    from .runlock import run_lock  # one writer per run stem and folder, for the run's whole life

    name = (get_method(method) if isinstance(method, str) else method).name
    stem = run_stem(name, cfg.setting, check_mode(cfg.mode), check_seed(seed))
    with run_lock(out_dir, stem), backend_settings(cfg.resolved(dev.type), dev), current:
        return _run_one(method=method, seed=seed, cfg=cfg, out_dir=out_dir, preset=preset, device=dev, resume=resume,
                        overwrite=overwrite, trace=trace, progress=progress, progress_cb=progress_cb,
                        cache_dir=cache_dir)


def _run_one(*, method: str | Method, seed: int, cfg: TrainConfig, out_dir: str | Path, preset: str,
             device: torch.device, resume: bool, overwrite: bool, trace: bool, progress: bool,
             progress_cb: ProgressCb | None, cache_dir: str | None) -> dict[str, Any]:
    """:func:`run_one` inside its backend settings: check the inputs, plan the tasks, restore what a previous run
    left (``resume``), train task after task with a checkpoint after each, write the result.

    Over 100 lines on purpose: it is the run read top to bottom (the sections marked ``# ----``); its parts are
    :func:`train_task`, :class:`~cemnist_baselines.checkpoints.RunProgress` and
    :func:`~cemnist_baselines.results.make_result`."""
    meth = get_method(method) if isinstance(method, str) else method
    seed = check_seed(seed)
    check_mode(cfg.mode)
    dev = resolve_device(device)
    cfg = cfg.resolved(dev.type)
    out = Path(out_dir)
    info = dataset_info(path=cfg.dataset_path, cache_dir=cache_dir)
    tasks = resolve_tasks(cfg.setting, cfg.class_order, info)
    _check_plugin(meth, cfg, tasks)
    T = len(tasks)
    stem = run_stem(meth.name, cfg.setting, cfg.mode, seed)
    result_path = out / f"{stem}.json"
    ckdir = out / "checkpoints" / stem
    cfg_dict = cfg.to_dict()
    finished = _finished_run(result_path, cfg_dict, overwrite=overwrite, resume=resume)
    if finished is not None:
        if progress_cb:
            progress_cb(float(T))
        return finished
    if not resume:  # a fresh run replaces the old one as a whole: no stale JSON, trace or checkpoint survives
        for p in (result_path, out / f"{stem}.trace.safetensors"):
            if p.exists():
                p.unlink()

    # ---- the tasks of this run: (task index, classes seen up to, epochs); the joint run is one task
    if meth.joint:
        plan = [(0, T - 1, cfg.epochs)]  # T·N images x epochs = the incremental runs' image-steps
    else:
        plan = [(t, t, cfg.epochs) for t in range(T)]
    used = [(config_name(cfg.mode, t), "train") for t in range(T)]
    used += [(c, cfg.eval_split) for c in eval_pool_configs(cfg.mode, T, cfg.eval_split)]
    hashes = content_hashes(info, used)

    bar = None
    if progress_cb is None and progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=float(T), desc=stem, unit="task", bar_format="{l_bar}{bar}| {n:.2f}/{total:.0f} [{elapsed}<{remaining}]")
        progress_cb = bar.update
    report: ProgressCb = progress_cb or (lambda u: None)

    # ---- model, evaluation pool, trace panel
    model = SimpleSegNet(1 + len(tasks[0]) if not meth.joint else 1 + sum(map(len, tasks)), width=cfg.width,
                         generator=make_generator(seed, torch.device("cpu"), "init")).to(dev)
    pool_x, pool_y = load_eval_pool(mode=cfg.mode, n_tasks=T, split=cfg.eval_split, max_n=cfg.max_test,
                                    path=cfg.dataset_path, device=dev, cache_dir=cache_dir)
    panel_images = pool_x[:cfg.trace_panel] if trace else None
    panel_masks = pool_y[:cfg.trace_panel] if trace else None
    run = RunProgress(method=meth.name, seed=seed, config=cfg_dict, trace=Trace() if trace else None)

    # ---- resume: continue after the last task with a checkpoint
    start_i = 0
    if resume:
        done = [i for i in range(len(plan)) if (ckdir / f"step{i}.safetensors").exists()]
        if done:
            last = max(done)
            run.restore(ckdir / f"step{last}.safetensors", model, dev)
            start_i = last + 1
            report(float(start_i * (T if meth.joint else 1)))
    elif ckdir.exists():
        for p in ckdir.glob("step*.safetensors"):
            p.unlink()

    # ---- train task after task (task 0 of the incremental methods: shared by the runs of one seed)
    ctx = _RunContext(meth=meth, model=model, tasks=tasks, cfg=cfg, seed=seed, dev=dev, trace=run.trace,
                      pool_x=pool_x, pool_y=pool_y, panel_images=panel_images, cache_dir=cache_dir, steps=run.steps,
                      state=run.method_state)
    try:
        for i in range(start_i, len(plan)):
            t, seen_upto, epochs = plan[i]
            t0 = time.perf_counter()
            units = (T if meth.joint else 1.0) / epochs
            shared = None
            if i == 0 and not meth.joint and cfg.share_task0:
                shared = shared_task0_path(out, cfg, seed, task0_key(cfg, seed, dev, trace, hashes))
            data = None
            with shared_task0_lock(shared):
                if shared is not None and run.reuse_shared_task0(shared, model, dev):
                    report(1.0)
                else:
                    data = train_task(ctx, t=t, epochs=epochs, seen_upto=seen_upto, report=lambda: report(units))
                    run.walls.append(time.perf_counter() - t0)
                    if shared is not None:
                        run.save(shared, model, with_state=False)
            _after_task(ctx, t, data)
            data = None
            run.save(ckdir / f"step{i}.safetensors", model)
    finally:
        if bar is not None:
            bar.close()

    # ---- result (and trace)
    pool_configs = eval_pool_configs(cfg.mode, T, cfg.eval_split)
    evaluation = {"split": cfg.eval_split, "pool_configs": pool_configs,
                  "num_images": int(pool_x.shape[0]), "num_pixels": int(pool_y.numel()),
                  "pool_num_images": sum(int(info["configs"][c][cfg.eval_split]["num_rows"]) for c in pool_configs)}
    result = make_result(method=meth.name, seed=seed, preset=preset, cfg=cfg, method_protocol=meth.protocol_values(),
                         method_source=method_source(meth), dataset={"version": info.get("version"),
                                                                      "content_sha256": hashes},
                         evaluation=evaluation, git_commit=git_commit(), env=env_info(dev), tasks=tasks,
                         wall_time_per_task_s=run.walls, steps=run.steps, step_tasks=[p[1] for p in plan],
                         shared_task0=run.shared_task0, joint=meth.joint)
    out.mkdir(parents=True, exist_ok=True)
    if run.trace is not None:
        tt = run.trace.tensors()
        tt["panel_images"] = panel_images
        tt["panel_full_masks"] = panel_masks
        atomic_save_safetensors(out / f"{stem}.trace.safetensors", tt,
                                {"result": result_path.name, "method": meth.name, "seed": str(seed),
                                 "run_id": result["run_id"]})
    atomic_write_text(result_path, result_json_text(result, name=str(result_path)))
    return result


def _finished_run(result_path: Path, cfg_dict: dict[str, Any], *, overwrite: bool,
                  resume: bool) -> dict[str, Any] | None:
    """The result already in ``result_path`` when ``resume`` may keep it; ValueError when it holds a run with
    another config (unless ``overwrite``); None when the run is to be (re)computed."""
    if not result_path.exists() or overwrite:
        return None
    res = load_result(result_path)  # a damaged file is an error naming it
    old_cfg = complete_config(res.get("config", {}))
    if old_cfg != cfg_dict:
        diff = sorted(k for k in set(old_cfg) | set(cfg_dict) if old_cfg.get(k) != cfg_dict.get(k))
        raise ValueError(f"{result_path} holds a run with another config (fields {diff}); use another output "
                         f"folder, or --overwrite to replace it")
    return res if resume else None


def _check_plugin(meth: Method, cfg: TrainConfig, tasks: list[list[int]]) -> None:
    """A plug-in method's dry run (:func:`cemnist_baselines.plugins.check_method`) before training; built-ins skip it."""
    from .plugins import check_method

    if not is_builtin(meth):
        check_method(meth, cfg=cfg, tasks=tasks)


@dataclass
class _RunContext:
    """What every step of one run shares."""

    meth: Method
    model: SimpleSegNet
    tasks: list[list[int]]
    cfg: TrainConfig
    seed: int
    dev: torch.device
    trace: Trace | None
    pool_x: torch.Tensor
    pool_y: torch.Tensor
    panel_images: torch.Tensor | None
    cache_dir: str | None
    steps: list[dict[str, Any]]
    state: dict[str, torch.Tensor] = field(default_factory=dict)  # the method's state (checkpointed)


def task_context(ctx: _RunContext, t: int, images: torch.Tensor, masks: torch.Tensor, lut: torch.Tensor,
                 old_model: SimpleSegNet | None, c_old: int) -> TaskContext:
    """The :class:`TaskContext` a method's hooks get for task ``t``."""
    return TaskContext(task=t, tasks=ctx.tasks, model=ctx.model, old_model=old_model, images=images, masks=masks,
                       lut=lut, c_old=c_old, seed=ctx.seed, device=ctx.dev, cfg=ctx.cfg, state=ctx.state)


def _mixing_step(step: Callable[..., torch.Tensor], meth: Method, state: dict[str, torch.Tensor],
                 generator: torch.Generator) -> Callable[..., torch.Tensor]:
    """``step`` on batches changed by ``meth.mix_batch`` (e.g. rehearsal images added)."""
    def mixed(xb: torch.Tensor, yb: torch.Tensor, tb: torch.Tensor | None = None) -> torch.Tensor:
        if tb is not None:
            raise ValueError(f"method {meth.name!r} changes its batches (mix_batch): the old model's logits "
                             f"cannot be cached for it")
        xb, yb = meth.mix_batch(xb, yb, state=state, generator=generator)
        return step(xb, yb)

    mixed.optimizer = step.optimizer  # type: ignore[attr-defined]
    return mixed


def _after_task(ctx: _RunContext, t: int, data: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    """Run the method's ``after_task`` hook for task ``t`` (loading the task's data if the step did not)."""
    if ctx.meth.joint or not overrides(ctx.meth, "after_task"):
        return
    cfg = ctx.cfg
    if data is None:
        data = load_task_data(task=t, split="train", mode=cfg.mode, path=cfg.dataset_path, limit=cfg.max_train,
                              device=ctx.dev, cache_dir=ctx.cache_dir)
    lut, _ = label_maps(ctx.tasks, t, ctx.dev)
    n_old = 1 + sum(len(ts) for ts in ctx.tasks[:t])
    ctx.meth.after_task(task_context(ctx, t, data[0], data[1], lut, None, n_old))
    state_to_device(ctx.state, ctx.dev)


def train_task(ctx: _RunContext, *, t: int, epochs: int, seen_upto: int,
                  report: Callable[[], None]) -> tuple[torch.Tensor, torch.Tensor]:
    """Grow the head (t > 0), train ``epochs`` epochs on task ``t`` (joint: on every task), evaluate on the pool;
    returns the training (images, masks)."""
    meth, model, cfg, dev, tasks, trace = ctx.meth, ctx.model, ctx.cfg, ctx.dev, ctx.tasks, ctx.trace
    amp = bool(cfg.amp_bf16)
    lut, ch2lab = label_maps(tasks, seen_upto, dev)
    if meth.joint:
        images, masks = load_joint_train(mode=cfg.mode, n_tasks=len(tasks), limit=cfg.max_train,
                                         path=cfg.dataset_path, device=dev, cache_dir=ctx.cache_dir)
    else:
        images, masks = load_task_data(task=t, split="train", mode=cfg.mode, path=cfg.dataset_path,
                                       limit=cfg.max_train, device=dev, cache_dir=ctx.cache_dir)
    old_model = None
    teacher = None
    c_old = model.num_classes
    if t > 0:
        if meth.uses_old_model:
            old_model = copy.deepcopy(model).eval()
            for p in old_model.parameters():
                p.requires_grad_(False)
            if cfg.channels_last:
                old_model.to(memory_format=torch.channels_last)
            if cfg.teacher_cache and not meth.old_model_per_batch and not overrides(meth, "mix_batch"):
                if meth.features:
                    teacher = teacher_outputs(old_model, images, features=meth.cached_features,
                                              batch_size=cfg.eval_batch_size, amp=amp)
                else:
                    teacher = teacher_logits(old_model, images, batch_size=cfg.eval_batch_size, amp=amp)
        grow_head(model, len(tasks[t]), generator=make_generator(ctx.seed, torch.device("cpu"), "head", t),
                  balanced=meth.balanced_init)
        if overrides(meth, "before_task"):
            meth.before_task(task_context(ctx, t, images, masks, lut, old_model, c_old))
            state_to_device(ctx.state, dev)
    loss_fn = meth.loss if (t > 0 or meth.joint) else METHODS["naive"].loss
    features = bool(meth.features and t > 0)
    if features:
        loss_fn = meth.feature_loss
    label_fn = meth.targets if (t > 0 and overrides(meth, "targets")) else None
    if cfg.compile:
        torch.compiler.reset()  # the head changed shape: start from a clean compile cache
    total = epochs * steps_per_epoch(images.shape[0], cfg.batch_size)
    task_lr = cfg.lr if (t == 0 or meth.joint or cfg.lr_next is None) else cfg.lr_next
    step = make_step(model, None if teacher is not None else old_model, loss_fn, lut, cfg=cfg, c_old=c_old,
                     device=dev, total_steps=total, lr=task_lr, label_fn=label_fn, features=features,
                     state=ctx.state)
    if t > 0 and overrides(meth, "mix_batch"):
        step = _mixing_step(step, meth, ctx.state, make_generator(ctx.seed, torch.device("cpu"), "replay-batch", t))
    gen = make_generator(ctx.seed, torch.device("cpu"), "shuffle", "joint" if meth.joint else t)  # any device
    seen_labels = ch2lab.tolist()
    recorded = set(trace_epochs(epochs, cfg.trace_every))
    conf = None
    for e in range(1, epochs + 1):
        model.train()
        losses = train_epoch(step, images, masks, batch_size=cfg.batch_size, generator=gen, teacher=teacher)
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0, 0])
            nb = losses.shape[0]
            raise FloatingPointError(
                f"non-finite loss {float(losses[bad])} in method {meth.name!r}, task {t}, epoch {e}, "
                f"step {bad} of the epoch (step {(e - 1) * nb + bad} of the task)")
        if trace is not None and e in recorded:
            model.eval()
            conf = confusion(model, ctx.pool_x, ctx.pool_y, ch2lab, batch_size=cfg.eval_batch_size, amp=amp).cpu()
            trace.conf.append(conf)
            trace.task.append(t)
            trace.index.append(e)
            trace.loss.append(float(losses.mean()))
        report()
    del teacher
    model.eval()
    if conf is None or trace is None or trace.index[-1] != epochs:
        conf = confusion(model, ctx.pool_x, ctx.pool_y, ch2lab, batch_size=cfg.eval_batch_size, amp=amp)
    entry: dict[str, Any] = {"task": t}
    entry.update(step_metrics(conf, seen_labels))
    entry["classes_seen"] = [d for ts in tasks[: seen_upto + 1] for d in ts]
    entry["epochs"] = epochs
    ctx.steps.append(entry)
    if trace is not None and ctx.panel_images is not None:
        trace.panel_pred.append(predict_labels(model, ctx.panel_images, ch2lab, batch_size=cfg.eval_batch_size,
                                            amp=amp).cpu())
    return images, masks

"""The training loop: every method is a loss on top of :func:`run_one`, read top to bottom (as nanoGPT's
``train.py``).

:func:`run_one` trains one method with one seed through every task: plan the tasks, restore what an
interrupted run left (``--resume``), then for each task :func:`train_task` (grow the head, train its epochs of
optimizer steps, :mod:`cemnist_baselines.optim_step`, score the fixed evaluation pool) and a checkpoint
(:mod:`cemnist_baselines.checkpoints`), and last the result JSON (:func:`cemnist_baselines.results.make_result`).
"Step" means an optimizer step; what a run keeps after each task is a *task record*. No global RNG is used:
init, head growth, shuffling and replay draws each get their own generator, derived from the run seed and the
task index (:mod:`cemnist_baselines.seeding`), so a resumed run replays exactly.
"""
from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .artifacts import atomic_save_safetensors, atomic_write_text, env_info, git_commit
from .backends import backend_settings
from .checkpoints import (RunProgress, Trace, remove_task_checkpoints, shared_task0_lock, shared_task0_path,
                          task0_key, task_checkpoint, task_checkpoints, trace_epochs)
from .config import TrainConfig, check_mode, complete_config
from .data import (config_name, content_hashes, dataset_info, eval_pool_configs, label_maps, load_eval_pool,
                   load_joint_train, load_task_data, resolve_tasks)
from .devices import resolve_device
from .inference import confusion, predict_labels, teacher_logits, teacher_outputs
from .methods import Method, TaskContext, overrides, state_to_device
from .metrics import task_metrics
from .model import SimpleSegNet, grow_head
from .optim_step import make_step, mixing_step, steps_per_epoch, train_epoch
from .registry import METHODS, get_method, is_builtin, method_source
from .results import load_result, make_result, result_json_text, run_stem
from .seeding import check_seed, make_generator

ProgressCb = Callable[[float], None]
Plan = list[tuple[int, int, int]]
"""The tasks of a run: (task index, last task whose classes it has seen, epochs); the joint run is one entry."""


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

    The model is scored after every task on the same fixed evaluation pool (``cfg.eval_split``; a fixed seeded
    subset of it with ``cfg.max_test``) in the full label space. Files under ``out_dir``: ``{stem}.json``,
    ``{stem}.trace.safetensors`` (with ``trace``), per-task checkpoints in ``checkpoints/{stem}/task{i}.safetensors``
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
    left (``resume``), train task after task with a checkpoint after each, write the result."""
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
    result_path, trace_path, ckdir = out / f"{stem}.json", out / f"{stem}.trace.safetensors", out / "checkpoints" / stem
    finished = _finished_run(result_path, cfg.to_dict(), overwrite=overwrite, resume=resume)
    if finished is not None:
        if progress_cb:
            progress_cb(float(T))
        return finished
    if not resume:  # a fresh run replaces the old one as a whole: no stale JSON, trace or checkpoint survives
        for p in (result_path, trace_path):
            if p.exists():
                p.unlink()
        remove_task_checkpoints(ckdir)

    # ---- the plan, the data it reads, the progress bar
    # joint: one task of T·N images x epochs = the incremental runs' image-steps
    plan: Plan = [(0, T - 1, cfg.epochs)] if meth.joint else [(t, t, cfg.epochs) for t in range(T)]
    used = [(config_name(cfg.mode, t), "train") for t in range(T)]
    used += [(c, cfg.eval_split) for c in eval_pool_configs(cfg.mode, T, cfg.eval_split)]
    hashes = content_hashes(info, used)
    bar, report = _progress_reporter(stem, T, progress=progress, progress_cb=progress_cb)

    # ---- model, evaluation pool, trace panel
    model = SimpleSegNet(1 + len(tasks[0]) if not meth.joint else 1 + sum(map(len, tasks)), width=cfg.width,
                         generator=make_generator(seed, torch.device("cpu"), "init")).to(dev)
    pool_x, pool_y = load_eval_pool(mode=cfg.mode, n_tasks=T, split=cfg.eval_split, max_n=cfg.max_test,
                                    path=cfg.dataset_path, device=dev, cache_dir=cache_dir)
    panel_images = pool_x[:cfg.trace_panel] if trace else None
    run = RunProgress(method=meth.name, seed=seed, config=cfg.to_dict(), trace=Trace() if trace else None)

    # ---- resume: continue after the last task with a checkpoint
    start_i = _resume_point(run, ckdir, model, dev, n_plan=len(plan)) if resume else 0
    if start_i > 0:
        report(float(start_i * (T if meth.joint else 1)))

    # ---- train task after task (task 0 of the incremental methods: shared by the runs of one seed)
    ctx = _RunContext(meth=meth, model=model, tasks=tasks, cfg=cfg, seed=seed, dev=dev, trace=run.trace,
                      pool_x=pool_x, pool_y=pool_y, panel_images=panel_images, cache_dir=cache_dir,
                      task_records=run.task_records, state=run.method_state)
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
            run.save(task_checkpoint(ckdir, i), model)
    finally:
        if bar is not None:
            bar.close()

    # ---- result (and trace)
    result = _run_result(meth, seed=seed, preset=preset, cfg=cfg, info=info, hashes=hashes, tasks=tasks,
                         pool_x=pool_x, pool_y=pool_y, run=run, plan=plan, dev=dev)
    out.mkdir(parents=True, exist_ok=True)
    if run.trace is not None:
        tensors = run.trace.tensors()
        tensors["panel_images"] = panel_images
        tensors["panel_full_masks"] = pool_y[:cfg.trace_panel]
        atomic_save_safetensors(trace_path, tensors, {"result": result_path.name, "method": meth.name,
                                                      "seed": str(seed), "run_id": result["run_id"]})
    atomic_write_text(result_path, result_json_text(result, name=str(result_path)))
    return result


def _check_plugin(meth: Method, cfg: TrainConfig, tasks: list[list[int]]) -> None:
    """A plug-in method's dry run (:func:`cemnist_baselines.plugins.check_method`) before training; built-ins skip it."""
    from .plugins import check_method

    if not is_builtin(meth):
        check_method(meth, cfg=cfg, tasks=tasks)


def _finished_run(result_path: Path, cfg_dict: dict[str, Any], *, overwrite: bool,
                  resume: bool) -> dict[str, Any] | None:
    """The result already in ``result_path`` when ``resume`` may keep it; ValueError when it holds a run with
    another config (unless ``overwrite``); None when the run is to be (re)computed."""
    if not result_path.exists() or overwrite:
        return None
    result = load_result(result_path)  # a damaged file is an error naming it
    old_cfg = complete_config(result.get("config", {}))
    if old_cfg != cfg_dict:
        diff = sorted(k for k in set(old_cfg) | set(cfg_dict) if old_cfg.get(k) != cfg_dict.get(k))
        raise ValueError(f"{result_path} holds a run with another config (fields {diff}); use another output "
                         f"folder, or --overwrite to replace it")
    return result if resume else None


def _progress_reporter(stem: str, n_tasks: int, *, progress: bool,
                       progress_cb: ProgressCb | None) -> tuple[Any, ProgressCb]:
    """(the tqdm bar to close, or None; the callback that receives the run's progress in task units):
    ``progress_cb`` when given, else a bar when ``progress``, else nothing."""
    if progress_cb is None and progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=float(n_tasks), desc=stem, unit="task",
                   bar_format="{l_bar}{bar}| {n:.2f}/{total:.0f} [{elapsed}<{remaining}]")
        return bar, bar.update
    return None, progress_cb or (lambda u: None)


def _resume_point(run: RunProgress, ckdir: Path, model: SimpleSegNet, dev: torch.device, *, n_plan: int) -> int:
    """The first entry of the plan still to train: after the last one with a checkpoint in ``ckdir`` (its
    model and progress restored into ``model`` and ``run``), else 0."""
    done = {i: f for i, f in task_checkpoints(ckdir).items() if i < n_plan}
    if not done:
        return 0
    last = max(done)
    run.restore(done[last], model, dev)
    return last + 1


@dataclass
class _RunContext:
    """What every task of one run shares."""

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
    task_records: list[dict[str, Any]]  # one per trained task (the result's ``steps``)
    state: dict[str, torch.Tensor] = field(default_factory=dict)  # the method's state (checkpointed)


def task_context(ctx: _RunContext, t: int, images: torch.Tensor, masks: torch.Tensor, lut: torch.Tensor,
                 old_model: SimpleSegNet | None, c_old: int) -> TaskContext:
    """The :class:`TaskContext` a method's hooks get for task ``t``."""
    return TaskContext(task=t, tasks=ctx.tasks, model=ctx.model, old_model=old_model, images=images, masks=masks,
                       lut=lut, c_old=c_old, seed=ctx.seed, device=ctx.dev, cfg=ctx.cfg, state=ctx.state)


def _after_task(ctx: _RunContext, t: int, data: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    """Run the method's ``after_task`` hook for task ``t`` (loading the task's data if training did not: a
    task 0 taken from the shared checkpoint)."""
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


def _run_result(meth: Method, *, seed: int, preset: str, cfg: TrainConfig, info: dict[str, Any],
                hashes: dict[str, str], tasks: list[list[int]], pool_x: torch.Tensor, pool_y: torch.Tensor,
                run: RunProgress, plan: Plan, dev: torch.device) -> dict[str, Any]:
    """The result record of a finished run (:func:`~cemnist_baselines.results.make_result`)."""
    pool_configs = eval_pool_configs(cfg.mode, len(tasks), cfg.eval_split)
    evaluation = {"split": cfg.eval_split, "pool_configs": pool_configs,
                  "num_images": int(pool_x.shape[0]), "num_pixels": int(pool_y.numel()),
                  "pool_num_images": sum(int(info["configs"][c][cfg.eval_split]["num_rows"]) for c in pool_configs)}
    return make_result(method=meth.name, seed=seed, preset=preset, cfg=cfg, method_protocol=meth.protocol_values(),
                       method_source=method_source(meth), dataset={"version": info.get("version"),
                                                                    "content_sha256": hashes},
                       evaluation=evaluation, git_commit=git_commit(), env=env_info(dev), tasks=tasks,
                       wall_time_per_task_s=run.walls, task_records=run.task_records,
                       seen_upto=[p[1] for p in plan], shared_task0=run.shared_task0, joint=meth.joint)


# ----------------------------------------------------------------------------- one task
def train_task(ctx: _RunContext, *, t: int, epochs: int, seen_upto: int,
               report: Callable[[], None]) -> tuple[torch.Tensor, torch.Tensor]:
    """Grow the head (t > 0), train ``epochs`` epochs on task ``t`` (joint: on every task), score the pool and
    append the task record; returns the training (images, masks)."""
    meth, model, cfg, dev, trace = ctx.meth, ctx.model, ctx.cfg, ctx.dev, ctx.trace
    amp = bool(cfg.amp_bf16)
    lut, ch2lab = label_maps(ctx.tasks, seen_upto, dev)
    if meth.joint:
        images, masks = load_joint_train(mode=cfg.mode, n_tasks=len(ctx.tasks), limit=cfg.max_train,
                                         path=cfg.dataset_path, device=dev, cache_dir=ctx.cache_dir)
    else:
        images, masks = load_task_data(task=t, split="train", mode=cfg.mode, path=cfg.dataset_path,
                                       limit=cfg.max_train, device=dev, cache_dir=ctx.cache_dir)

    # ---- the old model (frozen copy, its outputs cached), the grown head, the method's before_task hook
    old_model, teacher = None, None
    c_old = model.num_classes
    if t > 0:
        if meth.uses_old_model:
            old_model, teacher = _old_model(ctx, images)
        grow_head(model, len(ctx.tasks[t]), generator=make_generator(ctx.seed, torch.device("cpu"), "head", t),
                  balanced=meth.balanced_init)
        if overrides(meth, "before_task"):
            meth.before_task(task_context(ctx, t, images, masks, lut, old_model, c_old))
            state_to_device(ctx.state, dev)

    # ---- the epochs: optimizer steps over the task's images, a trace frame where asked
    step = _task_step(ctx, t=t, epochs=epochs, n_images=images.shape[0], lut=lut, c_old=c_old,
                      old_model=None if teacher is not None else old_model)
    gen = make_generator(ctx.seed, torch.device("cpu"), "shuffle", "joint" if meth.joint else t)  # any device
    recorded = set(trace_epochs(epochs, cfg.trace_every))
    conf = None
    for e in range(1, epochs + 1):
        model.train()
        losses = train_epoch(step, images, masks, batch_size=cfg.batch_size, generator=gen, teacher=teacher)
        _check_finite(losses, meth=meth, t=t, epoch=e)
        if trace is not None and e in recorded:
            model.eval()
            conf = confusion(model, ctx.pool_x, ctx.pool_y, ch2lab, batch_size=cfg.eval_batch_size, amp=amp).cpu()
            trace.conf.append(conf)
            trace.task.append(t)
            trace.index.append(e)
            trace.loss.append(float(losses.mean()))
        report()
    del teacher

    # ---- the task record: the model scored on the evaluation pool (and the trace's panel)
    model.eval()
    if conf is None or trace is None or trace.index[-1] != epochs:
        conf = confusion(model, ctx.pool_x, ctx.pool_y, ch2lab, batch_size=cfg.eval_batch_size, amp=amp)
    record: dict[str, Any] = {"task": t}
    record.update(task_metrics(conf, ch2lab.tolist()))
    record["classes_seen"] = [d for ts in ctx.tasks[: seen_upto + 1] for d in ts]
    record["epochs"] = epochs
    ctx.task_records.append(record)
    if trace is not None and ctx.panel_images is not None:
        trace.panel_pred.append(predict_labels(model, ctx.panel_images, ch2lab, batch_size=cfg.eval_batch_size,
                                               amp=amp).cpu())
    return images, masks


def _old_model(ctx: _RunContext, images: torch.Tensor) -> tuple[SimpleSegNet, Any]:
    """(a frozen copy of the model as the previous task left it, its outputs on ``images`` when they can be
    cached once for the task, else None: a teacher-caching config and a method that neither needs the old
    model per batch nor changes its batches)."""
    meth, cfg = ctx.meth, ctx.cfg
    old_model = copy.deepcopy(ctx.model).eval()
    for p in old_model.parameters():
        p.requires_grad_(False)
    if cfg.channels_last:
        old_model.to(memory_format=torch.channels_last)
    if not (cfg.teacher_cache and not meth.old_model_per_batch and not overrides(meth, "mix_batch")):
        return old_model, None
    amp = bool(cfg.amp_bf16)
    if meth.features:
        return old_model, teacher_outputs(old_model, images, features=meth.cached_features,
                                          batch_size=cfg.eval_batch_size, amp=amp)
    return old_model, teacher_logits(old_model, images, batch_size=cfg.eval_batch_size, amp=amp)


def _task_step(ctx: _RunContext, *, t: int, epochs: int, n_images: int, lut: torch.Tensor, c_old: int,
               old_model: SimpleSegNet | None) -> Callable[..., torch.Tensor]:
    """The optimizer step of task ``t`` (:func:`~cemnist_baselines.optim_step.make_step`): task 0 of an
    incremental method is plain cross-entropy, later tasks the method's loss (or feature loss) and label rule,
    at the task's peak lr over ``epochs`` epochs of ``n_images``; a method that changes its batches
    (``mix_batch``) gets them changed. ``old_model``: None when its outputs are cached."""
    meth, cfg = ctx.meth, ctx.cfg
    loss_fn = meth.loss if (t > 0 or meth.joint) else METHODS["naive"].loss
    features = bool(meth.features and t > 0)
    if features:
        loss_fn = meth.feature_loss
    label_fn = meth.targets if (t > 0 and overrides(meth, "targets")) else None
    if cfg.compile:
        torch.compiler.reset()  # the head changed shape: start from a clean compile cache
    total = epochs * steps_per_epoch(n_images, cfg.batch_size)
    task_lr = cfg.lr if (t == 0 or meth.joint or cfg.lr_next is None) else cfg.lr_next
    step = make_step(ctx.model, old_model, loss_fn, lut, cfg=cfg, c_old=c_old, device=ctx.dev, total_steps=total,
                     lr=task_lr, label_fn=label_fn, features=features, state=ctx.state)
    if t > 0 and overrides(meth, "mix_batch"):
        step = mixing_step(step, meth, ctx.state, make_generator(ctx.seed, torch.device("cpu"), "replay-batch", t))
    return step


def _check_finite(losses: torch.Tensor, *, meth: Method, t: int, epoch: int) -> None:
    """FloatingPointError naming the method, task, epoch and optimizer step of the first non-finite loss."""
    finite = torch.isfinite(losses)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0, 0])
        n_steps = losses.shape[0]
        raise FloatingPointError(
            f"non-finite loss {float(losses[bad])} in method {meth.name!r}, task {t}, epoch {epoch}, "
            f"step {bad} of the epoch (step {(epoch - 1) * n_steps + bad} of the task)")

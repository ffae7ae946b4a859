"""One optimizer step and one epoch of them: what "step" means in this package.

:func:`make_step` builds the step of one task (Adam, rebuilt at every task, and its per-step learning-rate
schedule :func:`make_scheduler`); :func:`train_epoch` runs :func:`steps_per_epoch` of them over a split.

Speed: each split lives on the device as uint8, batches are gathered by a permutation drawn once per epoch
from a seeded CPU ``torch.Generator`` (:func:`epoch_order`: every device sees the same batches) and converted
to float inside the (optionally compiled, optionally CUDA-graph-captured) step. No global RNG is used.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from .backends import apply_backend_settings
from .config import TrainConfig
from .methods import Method
from .model import SimpleSegNet


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
    apply_backend_settings(cfg, device)  # CUDA: IEEE fp32, cuDNN benchmarking, determinism (trainer.run_one restores them)
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
    dict of such tensors (logits and feature maps, :func:`~cemnist_baselines.inference.teacher_outputs`),
    gathered with the same indices."""
    n = images.shape[0]
    perm = to_device(epoch_order(n, generator=generator), images.device)
    n_steps = steps_per_epoch(n, batch_size)
    losses = torch.empty(n_steps, device=images.device)
    for b in range(n_steps):
        idx = perm[b * batch_size:(b + 1) * batch_size]
        if teacher is None:
            losses[b] = step(images[idx], masks[idx])
        elif isinstance(teacher, dict):
            losses[b] = step(images[idx], masks[idx], {k: v[idx] for k, v in teacher.items()})
        else:
            losses[b] = step(images[idx], masks[idx], teacher[idx])
    return losses


def mixing_step(step: Callable[..., torch.Tensor], meth: Method, state: dict[str, torch.Tensor],
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

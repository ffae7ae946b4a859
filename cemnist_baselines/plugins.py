"""The dry run of a plug-in method (one loaded by :mod:`.registry`) before any training.

:func:`check_method` calls a plug-in's hooks once on a tiny synthetic batch (a dry run of tasks 0 and 1): a hook
that raises, a loss that is not one differentiable number, ``targets`` without ``uses_old_model`` or
``protocol_values()`` that are not finite JSON values is a ValueError naming the method and the task.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Callable

import torch

from .data import label_maps
from .methods import Method, TaskContext, overrides, state_to_device
from .model import SimpleSegNet, grow_head
from .registry import method_source
from .seeding import make_generator

def check_protocol_values(meth: Method) -> dict[str, Any]:
    """``meth.protocol_values()``, checked: a dict with string keys and JSON values (no set, no NaN or
    infinity); ValueError naming the method otherwise."""
    where = f"method {meth.name!r} ({method_source(meth)})"
    try:
        pv = meth.protocol_values()
    except Exception as e:
        raise ValueError(f"{where}: protocol_values() raised {type(e).__name__}: {e}; fix the plug-in") from e
    if not isinstance(pv, dict) or not all(isinstance(k, str) for k in pv):
        raise ValueError(f"{where}: protocol_values() must return a dict with string keys, got {pv!r}; fix the plug-in")
    try:
        json.dumps(pv, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: protocol_values() must hold JSON values (str, int, finite float, bool, None, "
                         f"lists and dicts of them; a set or NaN is not one): {e}, in {pv!r}; fix the plug-in") from e
    return pv


def check_method(meth: Method, *, cfg: Any, tasks: list[list[int]]) -> None:
    """A dry run of a plug-in's hooks before any training: on the CPU, with 2 synthetic 60x60 images, a model of
    ``cfg.width`` and the first two tasks of ``tasks``, it calls what the trainer calls, in its order
    (``after_task`` of task 0; at task 1 ``before_task``, ``mix_batch``, ``targets``, ``loss`` or
    ``feature_loss``, ``after_task``; a joint method: ``loss`` on every class). ValueError naming the method,
    the task and the hook when a hook raises or returns the wrong kind of value, when ``targets`` is overridden
    without ``uses_old_model``, or when :func:`check_protocol_values` fails. Uses no global RNG.

    Over 100 lines on purpose: it replays the trainer's calls in the trainer's order, one block per hook, so that
    it can be read side by side with :func:`cemnist_baselines.trainer.train_task`."""
    check_protocol_values(meth)
    where = f"method {meth.name!r} ({method_source(meth)})"
    fix = "fix the plug-in (a dry call on a tiny synthetic batch, before training)"
    if not meth.joint and overrides(meth, "targets") and not meth.uses_old_model:
        raise ValueError(f"{where}: it overrides targets(), which gets the old model's logits, but uses_old_model is "
                         f"False (at task 1 the logits would be None); declare `uses_old_model: bool = True` in "
                         f"the class")
    cpu = torch.device("cpu")
    g = torch.Generator().manual_seed(0)
    n = 2

    def call(task: int, hook: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except Exception as e:
            hint = ""
            if not meth.uses_old_model and "NoneType" in str(e):
                hint = (" (the old model's logits t are None: uses_old_model is False; declare "
                        "`uses_old_model: bool = True` in the class)")
            raise ValueError(f"{where}, task {task}: {hook}() raised {type(e).__name__}: {e}{hint}; {fix}") from e

    def batch(task: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.tensor([0] + [d + 1 for d in (sum(tasks, []) if meth.joint else tasks[task])])
        x = torch.randint(0, 256, (n, 60, 60), generator=g, dtype=torch.uint8)
        return x, labels[torch.randint(0, len(labels), (n, 60, 60), generator=g)].to(torch.uint8)

    def check_loss(task: int, hook: str, loss: Any) -> None:
        ok = (isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.is_floating_point()
              and loss.requires_grad)
        if not ok:
            got = (f"a tensor of shape {tuple(loss.shape)}, dtype {loss.dtype}, requires_grad={loss.requires_grad}"
                   if isinstance(loss, torch.Tensor) else f"{type(loss).__name__} {loss!r}"[:200])
            raise ValueError(f"{where}, task {task}: {hook}() must return one floating-point number as a tensor "
                             f"that depends on the logits z (a scalar to backpropagate), got {got}; {fix}")

    def context(task: int, model: torch.nn.Module, old: torch.nn.Module | None, x: torch.Tensor, y: torch.Tensor,
                state: dict[str, torch.Tensor]) -> TaskContext:
        lut, _ = label_maps(tasks, task, cpu)
        c_old = 1 + sum(len(ts) for ts in tasks[:task])
        return TaskContext(task=task, tasks=tasks, model=model, old_model=old, images=x, masks=y, lut=lut,
                           c_old=c_old, seed=0, device=cpu, cfg=cfg, state=state)

    with torch.enable_grad():
        if meth.joint:
            model = SimpleSegNet(1 + sum(map(len, tasks)), width=cfg.width, generator=g)
            x, m = batch(0)
            lut, _ = label_maps(tasks, len(tasks) - 1, cpu)
            z = model(x.unsqueeze(1).float().div(255.0))
            check_loss(0, "loss", call(0, "loss", meth.loss, z, lut[m.long()], None, c_old=1,
                                       kd_lambda=cfg.kd_lambda))
            return
        state: dict[str, torch.Tensor] = {}
        model = SimpleSegNet(1 + len(tasks[0]), width=cfg.width, generator=g)
        x, m = batch(0)
        if overrides(meth, "after_task"):
            call(0, "after_task", meth.after_task, context(0, model, None, x, m, state))
            state_to_device(state, cpu)  # as the trainer does after every hook
        if len(tasks) < 2:
            return
        old = copy.deepcopy(model).eval() if meth.uses_old_model else None
        if old is not None:
            for p in old.parameters():
                p.requires_grad_(False)
        c_old = model.num_classes
        grow_head(model, len(tasks[1]), generator=make_generator(0, cpu, "head", 1), balanced=meth.balanced_init)
        x, m = batch(1)
        ctx = context(1, model, old, x, m, state)
        if overrides(meth, "before_task"):
            call(1, "before_task", meth.before_task, ctx)
            state_to_device(state, cpu)
        xb, mb = x, m
        if overrides(meth, "mix_batch"):
            out = call(1, "mix_batch", meth.mix_batch, x, m, state=state, generator=make_generator(0, cpu, "dry"))
            if not (isinstance(out, tuple) and len(out) == 2 and all(isinstance(v, torch.Tensor) for v in out)
                    and out[0].shape[0] == out[1].shape[0]):
                raise ValueError(f"{where}, task 1: mix_batch() must return (images, masks), two tensors with as "
                                 f"many rows; got {type(out).__name__}; {fix}")
            xb, mb = out
        xf = xb.unsqueeze(1).float().div(255.0)
        y = ctx.lut[mb.long()]
        if meth.features:
            z, feats = model.forward_features(xf)
            t, old_feats = (None, None)
            if old is not None:
                with torch.no_grad():
                    t, old_feats = old.forward_features(xf)
        else:
            z, feats, old_feats = model(xf), None, None
            t = None
            if old is not None:
                with torch.no_grad():
                    t = old(xf)
        if overrides(meth, "targets"):
            y2 = call(1, "targets", meth.targets, y, t, c_old=c_old)
            if not (isinstance(y2, torch.Tensor) and y2.shape == y.shape and not y2.is_floating_point()):
                got = f"shape {tuple(y2.shape)}, dtype {y2.dtype}" if isinstance(y2, torch.Tensor) else type(y2).__name__
                raise ValueError(f"{where}, task 1: targets() must return integer channel indices shaped like y "
                                 f"{tuple(y.shape)}, got {got}; {fix}")
            y = y2
        if meth.features:
            loss = call(1, "feature_loss", meth.feature_loss, z, y, t, feats, old_feats, c_old=c_old,
                        kd_lambda=cfg.kd_lambda, state=state)
            check_loss(1, "feature_loss", loss)
        else:
            check_loss(1, "loss", call(1, "loss", meth.loss, z, y, t, c_old=c_old, kd_lambda=cfg.kd_lambda))
        if overrides(meth, "after_task"):
            call(1, "after_task", meth.after_task, context(1, model, None, x, m, state))

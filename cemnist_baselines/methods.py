"""Methods as a few loss terms and hooks on one shared trainer: :class:`Method` (the flags and hooks a method
may override), :class:`TaskContext` (what the hooks see) and the built-in methods' classes. The loss formulas
are in :mod:`.losses`, the registry of built-ins and plug-ins in :mod:`.registry`. naive, kd, mib and joint
follow the formulas of docs/PROTOCOL.md; lwf, ilt, pl, plop and replay the reference code named in their
docstrings.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .inference import teacher_logits
from .losses import (ce_loss, tutorial_kd_loss, mib_kd_loss, unbiased_ce_loss, unbiased_kd_loss,
                     feature_distillation_loss, pseudo_label_targets, plop_find_median, plop_histogram,
                     plop_pseudo_ce, local_pod_loss)
from .seeding import make_generator


@dataclass
class TaskContext:
    """What the per-task hooks of a :class:`Method` see (one task of one run).

    ``images``/``masks``: the task's training split (uint8 [N, 60, 60], masks in label space: 0 = background,
    d + 1 = digit d, as released); ``lut`` maps labels to output channels for the classes seen so far.
    ``model`` is the network being trained (head already grown in ``before_task``), ``old_model`` the frozen
    model of the previous task (``None`` at task 0 or when ``uses_old_model`` is False). ``state`` is the run's
    method state: a flat ``{name: tensor}`` dict that hooks may read and write; it is saved in every per-task
    checkpoint (safetensors, so tensors only) and restored by ``--resume``; its tensors live on ``device`` (the
    trainer moves what a hook leaves elsewhere there after the hook). ``seed`` is the run seed: derive
    generators from it with :func:`cemnist_baselines.seeding.make_generator` (never the global RNG)."""

    task: int
    tasks: list[list[int]]
    model: torch.nn.Module
    old_model: torch.nn.Module | None
    images: torch.Tensor
    masks: torch.Tensor
    lut: torch.Tensor
    c_old: int
    seed: int
    device: torch.device
    cfg: Any
    state: dict[str, torch.Tensor]


@dataclass(frozen=True)
class Method:
    """A continual-learning method = a few loss terms on the shared trainer.

    What a method may override (the one place this is documented, with the README's "Add your method"):

    - :meth:`loss` — the per-batch loss ``loss(z, y, t, *, c_old, kd_lambda)`` for tasks t > 0 (task 0 is
      plain CE for every incremental method, so all of them share the task-0 model of a seed). ``z``: new
      logits [B, C, H, W] (float32), ``y``: target channels [B, H, W] (255 = ignore) after :meth:`targets`,
      ``t``: the frozen old model's logits [B, C_old, H, W] (``uses_old_model``; else ``None``).
    - :meth:`feature_loss` — instead of ``loss`` when ``features=True``: also receives the new and old
      model's intermediate feature maps (see :meth:`cemnist_baselines.model.SimpleSegNet.forward_features`) and the run's method ``state``. The old
      model then runs on every batch, unless the method names the few old maps it needs in
      ``cached_features``: those are computed once per task with the logits (teacher caching) and are all
      ``old_feats`` holds.
    - :meth:`targets` — the label rule: rewrite ``y`` from the old logits before the loss (pseudo-labels).
    - :meth:`mix_batch` — change the batch itself (e.g. add rehearsal images) before the forward pass.
    - :meth:`before_task` / :meth:`after_task` — hooks around each task, given a :class:`TaskContext`
      (e.g. PLOP's thresholds before a task, a replay memory after it). ``before_task`` runs before tasks
      t > 0 (task 0 may be a shared checkpoint), ``after_task`` after every task; neither for the joint run.
    - extra state to checkpoint: whatever the hooks put into ``ctx.state`` (tensors only; it is written to
      safetensors). A method whose state is not a set of tensors cannot be checkpointed this way and must
      recompute it in ``before_task`` (which runs again after ``--resume``).
    - :meth:`protocol_values` — method constants that can change the numbers (weights, memory size): they
      are recorded in every result and split leaderboard rows.

    Flags: ``uses_old_model`` (keep a frozen copy of the previous model; its logits are cached once per task
    unless ``old_model_per_batch``), ``old_model_per_batch`` (run the old model on every batch: needed for
    old-model feature maps too big to cache, e.g. PLOP's six), ``features`` (call :meth:`feature_loss`),
    ``cached_features`` (the old maps a ``features`` method needs, cached per task when not per batch),
    ``balanced_init`` (MiB's head init), ``joint`` (all classes at once). Register a built-in in
    :data:`cemnist_baselines.registry.METHODS`; third-party methods are loaded by reference or entry point (:mod:`.registry`). Each
    built-in class declares its own flags as class defaults, so a subclass of one (``class HalfKD(KD)``,
    ``examples/half_kd_plugin.py``) keeps them and only states what differs.
    """

    name: str
    uses_old_model: bool = False   # the trainer passes the frozen old model's logits as ``t``
    balanced_init: bool = False    # MiB's head init instead of the default one
    joint: bool = False            # all classes at once on the ``joint`` config
    old_model_per_batch: bool = False  # never cache the old model's output: run it on every batch
    features: bool = False         # the trainer calls feature_loss with intermediate features
    cached_features: tuple[str, ...] = ()  # old maps to cache per task with the logits (features, not per batch)

    def loss(self, z: torch.Tensor, y: torch.Tensor, t: torch.Tensor | None, *, c_old: int, kd_lambda: float) -> torch.Tensor:
        """Plain cross-entropy on the task mask (naive, joint)."""
        return ce_loss(z, y)

    def feature_loss(self, z: torch.Tensor, y: torch.Tensor, t: torch.Tensor | None, feats: dict[str, torch.Tensor],
                     old_feats: dict[str, torch.Tensor] | None, *, c_old: int, kd_lambda: float,
                     state: dict[str, torch.Tensor]) -> torch.Tensor:
        """The per-batch loss of a ``features=True`` method (default: :meth:`loss`)."""
        return self.loss(z, y, t, c_old=c_old, kd_lambda=kd_lambda)

    def targets(self, y: torch.Tensor, t: torch.Tensor, *, c_old: int) -> torch.Tensor:
        """Label rule applied before the loss at tasks t > 0 (default: the task mask unchanged)."""
        return y

    def mix_batch(self, x: torch.Tensor, y: torch.Tensor, *, state: dict[str, torch.Tensor],
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Change a uint8 batch (images, label-space masks) before the step (default: unchanged)."""
        return x, y

    def before_task(self, ctx: TaskContext) -> None:
        """Hook before training a task t > 0 (after the head has grown and the old model is frozen)."""

    def after_task(self, ctx: TaskContext) -> None:
        """Hook after a task has been trained and evaluated (also after a reused shared task 0)."""

    def protocol_values(self) -> dict[str, object]:
        """Method-specific protocol values (e.g. a replay memory size): recorded in every result and part of
        the leaderboard row key. None for the built-in methods."""
        return {}


def overrides(meth: Method, hook: str) -> bool:
    """Whether ``meth``'s class overrides ``Method.<hook>`` (the trainer skips hooks that are not)."""
    return getattr(type(meth), hook) is not getattr(Method, hook)


@dataclass(frozen=True)
class KD(Method):
    """The seed tutorial's output distillation: CE + lambda * KD, lambda = ``cfg.kd_lambda`` (10, the tutorial's).

    Reference: ``mapaf2/mnist-continual-seg``, ``trainer.py``, ``Trainer_distillation`` (plain
    ``nn.CrossEntropyLoss``; ``loss = ce_loss + lambda_distill * d_loss`` with ``output_level_distill=True``)
    and ``Trainer_distillation._softXEnt`` (:func:`tutorial_kd_loss`: background channel left out, old digit
    channels summed); ``3. Tutorial_training_distillation.ipynb`` sets ``lambda_distill=10``. The old model's
    logits come from the per-task teacher cache (the tutorial runs the old model on every batch: the same
    logits up to the batch composition). MiB's normalisation of the same idea is :class:`LwF`."""

    # the flags of this method, as class defaults: a subclass keeps them
    uses_old_model: bool = True

    def loss(self, z, y, t, *, c_old, kd_lambda):  # type: ignore[override]
        return ce_loss(z, y) + kd_lambda * tutorial_kd_loss(z, t)

    def protocol_values(self) -> dict[str, object]:
        return {"kd_formula": "tutorial"}


@dataclass(frozen=True)
class LwF(Method):
    """LwF as the MiB code runs it (Li & Hoiem 2016; MiB's "LwF" rows): CE + 100 * MiB's KD.

    Reference: ``fcdl94/MiB``, ``argparser.py``, ``modify_command_options`` (``--method LWF`` sets
    ``opts.loss_kd = 100``; plain CE, ``alpha`` 1) and ``train.py``, ``Trainer.train``: ``lkd = self.lkd *
    self.lkd_loss(outputs, outputs_old)`` with ``utils/loss.py``, ``KnowledgeDistillationLoss``
    (:func:`mib_kd_loss`: mean over all C_old channels, background included). The weight is MiB's own (100),
    recorded as a protocol value; ``cfg.kd_lambda`` is not used. Logits from the per-task teacher cache."""

    # the flags of this method, as class defaults: a subclass keeps them
    uses_old_model: bool = True
    kd_weight: float = 100.0

    def loss(self, z, y, t, *, c_old, kd_lambda):  # type: ignore[override]
        return ce_loss(z, y) + self.kd_weight * mib_kd_loss(z, t)

    def protocol_values(self) -> dict[str, object]:
        return {"kd_weight": self.kd_weight}


@dataclass(frozen=True)
class MiB(Method):
    """UnCE + lambda * UnKD (+ balanced init, set by the flag)."""

    # the flags of this method, as class defaults: a subclass keeps them
    uses_old_model: bool = True
    balanced_init: bool = True

    def loss(self, z, y, t, *, c_old, kd_lambda):  # type: ignore[override]
        return unbiased_ce_loss(z, y, c_old) + kd_lambda * unbiased_kd_loss(z, t)


@dataclass(frozen=True)
class ILT(Method):
    """ILT (Michieli & Zanuttigh 2019) as in the MiB code: CE + 100 * KD + 100 * feature distillation.

    Reference: ``fcdl94/MiB``, ``argparser.py`` (``--method ILT`` sets ``loss_kd = 100``, ``loss_de = 100``;
    plain CE, alpha 1) and ``train.py``, ``Trainer.train``: ``lkd = loss_kd * KnowledgeDistillationLoss(
    outputs, outputs_old)`` (:func:`mib_kd_loss`) and ``lde = loss_de * nn.MSELoss()(features['body'],
    features_old['body'])``. Adaptation: MiB's ``body`` is the ResNet backbone's output; ours is the
    encoder output of SimpleSegNet (after ``enc3``, post-ReLU, [B, width, 15, 15]). The weights are ILT's
    own (100, 100), recorded as protocol values; ``cfg.kd_lambda`` (our ``kd``'s 10) is not used. The old
    model's logits and ``enc3`` map are computed once per task (teacher caching, 36 MB in bf16 per task;
    ``--no-teacher-cache`` runs the old model on every batch, with the same numbers)."""

    # the flags of this method, as class defaults: a subclass keeps them
    uses_old_model: bool = True
    features: bool = True
    cached_features: tuple[str, ...] = ("enc3",)
    kd_weight: float = 100.0
    de_weight: float = 100.0

    def feature_loss(self, z, y, t, feats, old_feats, *, c_old, kd_lambda, state):  # type: ignore[override]
        return (ce_loss(z, y) + self.kd_weight * mib_kd_loss(z, t)
                + self.de_weight * feature_distillation_loss(feats["enc3"], old_feats["enc3"]))

    def protocol_values(self) -> dict[str, object]:
        return {"kd_weight": self.kd_weight, "de_weight": self.de_weight}


@dataclass(frozen=True)
class PL(Method):
    """Pseudo-labelling (PLOP's ``--pseudo naive``), plain CE on the relabelled mask.

    Reference: ``arthurdouillard/CVPR2021_PLOP``, ``train.py``, ``Trainer.train``, branch
    ``pseudo_labeling == "naive"``: ``mask_background = labels < old_classes``;
    ``labels[mask_background] = outputs_old.argmax(dim=1)[mask_background]`` (:func:`pseudo_label_targets`).
    The old logits come from the teacher cache."""

    # the flags of this method, as class defaults: a subclass keeps them
    uses_old_model: bool = True

    def targets(self, y, t, *, c_old):  # type: ignore[override]
        return pseudo_label_targets(y, t, c_old=c_old)


PLOP_MAPS: tuple[str, ...] = ("enc1.pre", "enc2.pre", "enc3.pre", "dec1.pre", "dec2")
"""The feature maps PLOP distils on SimpleSegNet (then the logits), where PLOP takes its own (see :class:`PLOP`)."""


@dataclass(frozen=True)
class PLOP(Method):
    """PLOP (Douillard et al. 2021): entropy pseudo-labels with the classification adaptive factor + Local POD.

    References (``arthurdouillard/CVPR2021_PLOP``): ``argparser.py`` (``--method PLOP``: ``pod="local"``,
    ``pod_factor=0.01``, ``pod_logits``, the logits' options ``factor=0.0005``/``extra_channels="sum"``,
    ``pseudo="entropy"``, ``threshold=0.001``, ``classif_adaptive_factor``, ``init_balanced``; defaults
    ``spp_scales=[1, 2, 4]``, ``pod_prepro="pow"``, POD schedule on, plain CE, no output KD);
    ``train.py``: ``Trainer.before``/``find_median`` (thresholds, :func:`plop_thresholds`,
    :func:`plop_find_median`), ``Trainer.train`` (pseudo-labels and factor, :func:`plop_pseudo_ce`),
    ``entropy`` (:func:`plop_entropy`), ``features_distillation``/``_local_pod`` (:func:`local_pod_loss`).

    Which maps (:data:`PLOP_MAPS`): PLOP distils the outputs of the 4 ResNet stages as their last residual
    block returns them *before* its activation (``modules/residual.py``, ``ResidualBlock.forward`` with
    ``last=True`` returns ``(act, x)``), the DeepLab head's output *after* its BN + activation
    (``segmentation_module.py``, ``_network``: ``attentions + [x_pl]``), and the logits. On SimpleSegNet the
    analogues are the pre-ReLU outputs of enc1, enc2, enc3, dec1 (the stages), dec2 *after* its ReLU (the map
    the head reads, PLOP's ``x_pl``) and the logits: 6 maps, as in PLOP.

    Deviations (docs/PROTOCOL.md section 7 tables them with reasons): our network has no normalisation layers,
    so the maps are not normalised (PLOP's are BN outputs); the logits are 60x60 (no upsampling after the
    head); Local POD regions use ``k = W // s`` as PLOP does, so at 15x15 (enc3) and scale 4 the last 3
    rows/columns are outside the regions; the thresholds are computed by the ``before_task`` hook on the task's
    training images with the eval batch size (PLOP's ``before`` on its train loader); the protocol's schedule
    (OneCycle, one lr for every task) replaces PLOP's. The median is PLOP's own loop, not a histogram median
    (:func:`plop_find_median`). The old model runs on every batch.
    Scale (measured, not adapted): with the reference factors the POD term of a model that learns the new
    digits is far larger than its CE on this unnormalised network (``python -m cemnist_baselines.study
    pod-scale``; docs/PROTOCOL.md section 6); :data:`cemnist_baselines.registry.METHODS` ``["plop_tuned"]`` is PLOP with factors chosen
    on the validation pool."""

    # the flags of this method, as class defaults: a subclass keeps them
    uses_old_model: bool = True
    old_model_per_batch: bool = True
    features: bool = True
    balanced_init: bool = True
    pod_factor: float = 0.01
    pod_logits_factor: float = 0.0005
    threshold: float = 0.001

    def before_task(self, ctx: TaskContext) -> None:  # type: ignore[override]
        if ctx.old_model is None:
            return
        amp = bool(getattr(ctx.cfg, "amp_bf16", False))
        bs = int(getattr(ctx.cfg, "eval_batch_size", 500))
        n_classes = ctx.model.num_classes
        hist = None
        for i in range(0, ctx.images.shape[0], bs):  # batch by batch: the old logits are not kept
            logits = teacher_logits(ctx.old_model, ctx.images[i:i + bs], batch_size=bs, amp=amp)
            h = plop_histogram(logits, ctx.lut[ctx.masks[i:i + bs].long()] == 0, n_classes=n_classes)
            hist = h if hist is None else hist + h
        if hist is None:
            raise ValueError(f"PLOP: task {ctx.task} has no training images to compute its thresholds on")
        ctx.state["plop.thresholds"] = plop_find_median(hist, base=self.threshold)
        ctx.state["plop.max_entropy"] = torch.tensor(math.log(n_classes), dtype=torch.float64)

    def feature_loss(self, z, y, t, feats, old_feats, *, c_old, kd_lambda, state):  # type: ignore[override]
        n_classes = z.shape[1]
        cls = plop_pseudo_ce(z, y, t, c_old=c_old, thresholds=state["plop.thresholds"],
                             max_entropy=math.log(n_classes))  # = state["plop.max_entropy"], without a host sync
        pod = local_pod_loss([old_feats[n] for n in PLOP_MAPS] + [t], [feats[n] for n in PLOP_MAPS] + [z],
                             c_old=c_old, n_classes=n_classes, n_new=n_classes - c_old, factor=self.pod_factor,
                             logits_factor=self.pod_logits_factor)
        return cls + pod

    def protocol_values(self) -> dict[str, object]:
        return {"pod_factor": self.pod_factor, "pod_logits_factor": self.pod_logits_factor,
                "threshold": self.threshold, "pod_maps": ",".join(PLOP_MAPS), "median": "plop_find_median"}


PLOP_TUNED_DIVISOR = 10_000
"""``plop_tuned``: both POD factors of PLOP divided by this, the best of 1,000 / 10,000 / 100,000 on the validation
pool (final mIoU (bg) 0.659 / 0.675 / 0.662, seed 0, 2-2 overlap; docs/PROTOCOL.md section 6)."""


def memory_quotas(n_slots: int, n_classes: int) -> list[int]:
    """``n_slots`` split over ``n_classes`` as equally as possible (the earlier classes get the remainder)."""
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    q, r = divmod(n_slots, n_classes)
    return [q + (1 if i < r else 0) for i in range(n_classes)]


@dataclass(frozen=True)
class Replay(Method):
    """Rehearsal: a fixed-size memory of past tasks' training images with the masks of their own task, mixed
    into every batch (plain CE on the task batch + memory images).

    Memory (rebuilt after every task by :meth:`after_task`): ``memory_size`` slots split equally over the
    classes seen so far (:func:`memory_quotas`, class order). A class's candidates are the images of its own
    task's training split whose mask contains it, ranked by a permutation from the generator
    ``make_generator(seed, "cpu", "replay-memory", digit)``; an image already chosen for another class of the
    same task is skipped. A class keeps a prefix of its ranking when its quota shrinks, so the memory after
    task t is a function of the seed and the data only. Each training batch at t > 0 gets ``per_batch``
    distinct memory images drawn by the CPU generator ``make_generator(seed, "cpu", "replay-batch", t)`` (the
    same draws on every device). The memory is part of the run state (checkpointed) and lives on the run's
    device with the training data. Memory size and images per batch are protocol values."""

    memory_size: int = 100
    per_batch: int = 8

    def after_task(self, ctx: TaskContext) -> None:  # type: ignore[override]
        seen = [d for ts in ctx.tasks[: ctx.task + 1] for d in ts]
        quotas = dict(zip(seen, memory_quotas(self.memory_size, len(seen))))
        dev = ctx.device  # the state's one device: what a checkpoint restored may arrive elsewhere
        old_x, old_y, old_c = (None if v is None else v.to(dev) for v in
                               (ctx.state.get(f"replay.{k}") for k in ("images", "masks", "digit")))
        xs, ys, cs = [], [], []
        for d in seen:
            if d not in ctx.tasks[ctx.task]:  # a class of an earlier task: keep a prefix of its ranking
                if old_c is None:
                    raise ValueError(f"replay memory has no entries for digit {d} (state lost?)")
                idx = (old_c == d).nonzero().flatten()[: quotas[d]]
                xs.append(old_x[idx]); ys.append(old_y[idx]); cs.append(old_c[idx])
        taken: set[int] = set()
        masks = ctx.masks.cpu()
        for d in ctx.tasks[ctx.task]:
            g = make_generator(ctx.seed, torch.device("cpu"), "replay-memory", d)
            order = torch.randperm(masks.shape[0], generator=g)
            has = (masks == d + 1).flatten(1).any(dim=1)
            chosen = [int(i) for i in order.tolist() if bool(has[i]) and int(i) not in taken][: quotas[d]]
            taken.update(chosen)
            sel = torch.tensor(chosen, dtype=torch.int64).to(dev)
            xs.append(ctx.images.to(dev)[sel]); ys.append(ctx.masks.to(dev)[sel])
            cs.append(torch.full((len(chosen),), d, dtype=torch.int64, device=dev))
        ctx.state["replay.images"] = torch.cat(xs).contiguous()
        ctx.state["replay.masks"] = torch.cat(ys).contiguous()
        ctx.state["replay.digit"] = torch.cat(cs).contiguous()

    def mix_batch(self, x, y, *, state, generator):  # type: ignore[override]
        mx, my = state["replay.images"], state["replay.masks"]
        k = min(self.per_batch, mx.shape[0])
        j = torch.randperm(mx.shape[0], generator=generator, device=generator.device)[:k]
        j = j.to(mx.device, non_blocking=True)  # the memory is on the device: 8 indices go there, nothing comes back
        return torch.cat([x, mx[j].to(x.device)]), torch.cat([y, my[j].to(y.device)])

    def protocol_values(self) -> dict[str, object]:
        return {"memory_size": self.memory_size, "per_batch": self.per_batch}


def state_to_device(state: dict[str, torch.Tensor], device: torch.device) -> None:
    """Move the method state's tensors to the run's device, in place: the state lives on one declared device
    (``TaskContext.device``), whatever a hook or a checkpoint left elsewhere (a no-op for tensors already there)."""
    for k, v in state.items():
        if v.device != device:
            state[k] = v.to(device)

"""Methods as a few loss terms on one shared trainer. Formulas follow issue 3 §2 (normative) for naive, kd, mib
and joint; ilt, pl, plop and replay follow the reference code named in their docstrings (issue 10 §1).

Notation: ``z`` new logits [B, C, H, W], ``t`` frozen old-model logits [B, C_old, H, W] (C_old includes
background), ``y`` target channel indices [B, H, W] (255 = ignore). Every loss is a mean over pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

IGNORE = 255


def ce_loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over non-ignored pixels."""
    return F.cross_entropy(z, y, ignore_index=IGNORE)


def tutorial_kd_loss(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The seed tutorial's KD (``mapaf2/mnist-continual-seg``, ``trainer.py``, ``Trainer_distillation._softXEnt``):
    KD = -(1 / (B*H*W)) * sum_pixels sum_{c = 1 .. C_old - 1} softmax(t)_c * log_softmax(z[:, :C_old])_c.

    Both distributions are over the C_old old channels (background included); the background channel is then
    dropped and the old digit channels are *summed* (no division by C_old)."""
    c_old = t.shape[1]
    q = torch.softmax(t, dim=1)[:, 1:]
    logp = torch.log_softmax(z[:, :c_old], dim=1)[:, 1:]
    b, _, h, w = z.shape
    return -(q * logp).sum() / (b * h * w)


def mib_kd_loss(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """MiB's ``KnowledgeDistillationLoss`` (``fcdl94/MiB``, ``utils/loss.py``, ``alpha=1``, ``reduction="mean"``):
    KD = -mean_pixels[(1/C_old) sum_{c<C_old} softmax(t)_c * log_softmax(z[:, :C_old])_c] — a *mean* over
    all C_old channels, background included. The distillation term of MiB's LwF and ILT baselines."""
    c_old = t.shape[1]
    q = torch.softmax(t, dim=1)
    logp = torch.log_softmax(z[:, :c_old], dim=1)
    return -(q * logp).sum(dim=1).mean() / c_old


def unbiased_ce_loss(z: torch.Tensor, y: torch.Tensor, c_old: int) -> torch.Tensor:
    """MiB UnCE: log p(bg) = LSE(z[0:C_old]) - LSE(z); log p(c) = z_c - LSE(z), c >= C_old; targets < C_old -> 0."""
    lse = torch.logsumexp(z, dim=1, keepdim=True)
    logp_bg = torch.logsumexp(z[:, :c_old], dim=1, keepdim=True) - lse
    logp = torch.cat([logp_bg, z[:, c_old:] - lse], dim=1)  # channel 0 = bg, then the new channels
    y2 = torch.where(y == IGNORE, y, torch.where(y < c_old, torch.zeros_like(y), y - c_old + 1))
    return F.nll_loss(logp, y2, ignore_index=IGNORE)


def unbiased_kd_loss(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """MiB UnKD: log p^(bg) = LSE(z[{0} u new]) - LSE(z); log p^(c) = z_c - LSE(z), 1 <= c < C_old;
    loss = -mean_pixels[(q_0 log p^(bg) + sum_{c>=1} q_c log p^(c)) / C_old], q = softmax(t)."""
    c_old = t.shape[1]
    q = torch.softmax(t, dim=1)
    lse = torch.logsumexp(z, dim=1, keepdim=True)
    bg_new = torch.cat([z[:, :1], z[:, c_old:]], dim=1)
    logp_bg = torch.logsumexp(bg_new, dim=1, keepdim=True) - lse
    logp = torch.cat([logp_bg, z[:, 1:c_old] - lse], dim=1)
    return -(q * logp).sum(dim=1).mean() / c_old


# ----------------------------------------------------------------------------- features, ILT, PL, PLOP
SEGNET_BLOCKS = ("enc1", "enc2", "enc3", "dec1", "dec2")


def segnet_forward(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``SimpleSegNet.forward`` with its intermediate maps: (logits, features).

    ``features[b]`` is block ``b``'s output (after its last ReLU) and ``features[b + ".pre"]`` the same before
    that ReLU, for b in enc1 (60x60), enc2 (30x30), enc3 (15x15, the encoder output), dec1 (30x30),
    dec2 (60x60). The logits are bit-identical to ``model(x)`` (same ops in the same order)."""
    feats: dict[str, torch.Tensor] = {}
    h = x
    for b in SEGNET_BLOCKS:
        if b in ("enc2", "enc3"):
            h = F.max_pool2d(h, 2)
        elif b in ("dec1", "dec2"):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        convs = getattr(model, b)
        for c in convs[:-1]:
            h = F.relu(c(h))
        pre = convs[-1](h)
        h = F.relu(pre)
        feats[b + ".pre"] = pre
        feats[b] = h
    return model.head(h), feats


def feature_distillation_loss(f_new: torch.Tensor, f_old: torch.Tensor) -> torch.Tensor:
    """ILT's encoder distillation: mean over every element of (f_new - f_old)^2 (``nn.MSELoss()``)."""
    return F.mse_loss(f_new, f_old)


def pseudo_label_targets(y: torch.Tensor, t: torch.Tensor, *, c_old: int) -> torch.Tensor:
    """Naive pseudo-labels: pixels whose target is an old channel (< C_old: the background of the current
    mask) take the old model's argmax; where that argmax is background (0) they stay background."""
    bg = y < c_old
    return torch.where(bg, t.argmax(dim=1).to(y.dtype), y)


def plop_entropy(p: torch.Tensor) -> torch.Tensor:
    """PLOP's per-pixel entropy of probabilities ``p`` [B, C, H, W]:
    -(1 / log(C + 1e-8)) * mean_c p_c log(p_c + 1e-8) (a mean over channels, not a sum)."""
    return -(p * torch.log(p + 1e-8)).mean(dim=1) / math.log(p.shape[1] + 1e-8)


def plop_find_median(hist: torch.Tensor, *, base: float = 0.001) -> torch.Tensor:
    """PLOP's per-class entropy thresholds from histograms ``hist`` [K, nb_bins] of int64 counts, as
    ``Trainer.find_median`` (``arthurdouillard/CVPR2021_PLOP``, ``train.py``, ``mode="entropy"``) computes them,
    arithmetic included (float32 as there):

    - for bins i = 0, 1, ...: border = i / nb_bins, bin j = int(border * nb_bins) (float rounding makes j = i - 1
      for some i, e.g. 29 -> 28); stop at the first bin with running <= half <= running + hist[j], where
      half = total / 2 and *running grows by the bin index* (``running_sum += lower_border * nb_bins``), not by
      the bin's count;
    - threshold = border + (half - running) / hist[j] / nb_bins, taken at the last bin when no bin stopped the
      loop (then +inf when that bin is empty and half > running: every old pseudo-label is kept);
    - 0 for a class with an empty histogram; finally max(threshold, ``base``) (NaN stays NaN, as Python's
      ``max(tensor, float)`` there).

    It equals a histogram median when the median lies in the first bin; otherwise it returns the first bin
    holding about half of the class's pixels, or +inf when there is none (docs/PROTOCOL.md section 7)."""
    if hist.dim() != 2 or hist.dtype != torch.int64:
        raise ValueError(f"plop_find_median needs int64 histograms [K, nb_bins], got {hist.dtype} {tuple(hist.shape)}")
    hist = hist.cpu()
    k, nb = hist.shape
    out = torch.zeros(k, dtype=torch.float32)
    for c in range(k):
        row = hist[c]
        total = row.sum()
        if total <= 0:
            continue
        half = total / 2
        running = 0.0
        border, j = 0.0, 0
        for i in range(nb):
            border = i / nb
            j = int(border * nb)
            if bool(half >= running) and bool(half <= running + row[j]):
                break
            running += border * nb
        out[c] = border + ((half - running) / row[j]) * (1 / nb)
    return torch.clamp(out, min=base)


def plop_histogram(old_logits: torch.Tensor, bg: torch.Tensor, *, n_classes: int, nb_bins: int = 100) -> torch.Tensor:
    """PLOP's entropy histograms [C_old, nb_bins] of one batch: over the background pixels ``bg`` [B, H, W],
    ``plop_entropy`` of the old model's softmax divided by ``log(n_classes)`` (classes after this task,
    background included), binned (clamped into the last bin) per old-model argmax class."""
    p = torch.softmax(old_logits.float(), dim=1)
    ent = plop_entropy(p)[bg] / math.log(n_classes)
    cls = p.argmax(dim=1)[bg]
    bins = torch.clamp((ent * nb_bins).long(), max=nb_bins - 1)
    hist = torch.zeros(old_logits.shape[1], nb_bins, dtype=torch.int64, device=old_logits.device)
    hist.index_put_((cls, bins), torch.ones_like(cls), accumulate=True)
    return hist


def plop_thresholds(old_logits: torch.Tensor, bg: torch.Tensor, *, n_classes: int, base: float = 0.001,
                    nb_bins: int = 100) -> tuple[torch.Tensor, float]:
    """PLOP's per-class entropy thresholds (``Trainer.find_median`` with ``mode="entropy"``) of one batch:
    :func:`plop_find_median` of the class's :func:`plop_histogram`. Returns (thresholds [C_old], max_entropy)."""
    hist = plop_histogram(old_logits, bg, n_classes=n_classes, nb_bins=nb_bins)
    return plop_find_median(hist, base=base), math.log(n_classes)


def plop_pseudo_ce(z: torch.Tensor, y: torch.Tensor, t: torch.Tensor, *, c_old: int, thresholds: torch.Tensor,
                   max_entropy: float) -> torch.Tensor:
    """PLOP's classification term: entropy pseudo-labels + the classification adaptive factor.

    Background pixels (y < C_old) take the old argmax where its normalised entropy is below that class's
    threshold, else are ignored; CE per pixel (ignored pixels contribute 0) times the per-image factor
    (#confident background pixels / (#background pixels + 1e-6)); mean over all B*H*W pixels."""
    p = torch.softmax(t, dim=1)
    pl = p.argmax(dim=1)
    valid = plop_entropy(p) / max_entropy < thresholds.to(t.device)[pl]
    bg = y < c_old
    labels = torch.where(bg, torch.where(valid, pl.to(y.dtype), torch.full_like(y, IGNORE)), y)
    ce = F.cross_entropy(z, labels, ignore_index=IGNORE, reduction="none")
    num = (valid & bg).float().sum(dim=(1, 2))
    den = bg.float().sum(dim=(1, 2))
    factor = (num / (den + 1e-6))[:, None, None]
    return (factor * ce).mean()


def local_pod_embedding(x: torch.Tensor, scales: tuple[int, ...] = (1, 2, 4)) -> torch.Tensor:
    """PLOP's Local POD embedding of a square map [B, C, H, W]: for each scale s and each of the s x s regions
    of side k = W // s, the region's mean over width ([B, C*k]) and over height; concatenated."""
    b, w = x.shape[0], x.shape[-1]
    emb = []
    for s in scales:
        k = w // s
        for i in range(s):
            for j in range(s):
                r = x[..., i * k:(i + 1) * k, j * k:(j + 1) * k]
                emb.append(r.mean(dim=3).reshape(b, -1))
                emb.append(r.mean(dim=2).reshape(b, -1))
    return torch.cat(emb, dim=1)


def local_pod_embedding_fast(x: torch.Tensor, scales: tuple[int, ...] = (1, 2, 4)) -> torch.Tensor:
    """The entries of :func:`local_pod_embedding` in another order (one reshape per scale instead of a slice per
    region): equal Frobenius norms of differences, far fewer autograd nodes."""
    b, c, w = x.shape[0], x.shape[1], x.shape[-1]
    emb = []
    for s in scales:
        k = w // s
        r = x[..., : s * k, : s * k].reshape(b, c, s, k, s, k)
        emb.append(r.mean(dim=5).reshape(b, -1))
        emb.append(r.mean(dim=3).reshape(b, -1))
    return torch.cat(emb, dim=1)


def local_pod_loss(old: list[torch.Tensor], new: list[torch.Tensor], *, c_old: int, n_classes: int, n_new: int,
                   factor: float = 0.01, logits_factor: float = 0.0005, scales: tuple[int, ...] = (1, 2, 4),
                   schedule: bool = True) -> torch.Tensor:
    """PLOP's POD term (``features_distillation`` with ``collapse_channels="local"``, ``pod_logits``).

    Per map pair (the last pair = logits): new logits' extra channels are summed into background
    (channel 0 <- z_0 + sum of new channels, then channels 1..C_old-1); both maps squared ("pow"); Local POD
    embeddings; per-image Frobenius norm of the difference, mean over images; times ``factor`` (features) or
    ``logits_factor`` (logits), times sqrt(n_classes / n_new) (the POD schedule); sum over pairs divided by
    the number of pairs (the per-pair terms: :func:`local_pod_terms`)."""
    terms = local_pod_terms(old, new, c_old=c_old, n_classes=n_classes, n_new=n_new, factor=factor,
                            logits_factor=logits_factor, scales=scales, schedule=schedule)
    total = torch.zeros((), device=new[0].device, dtype=new[0].dtype)
    for layer in terms:
        total = total + layer
    return total / len(old)


def local_pod_terms(old: list[torch.Tensor], new: list[torch.Tensor], *, c_old: int, n_classes: int, n_new: int,
                    factor: float = 0.01, logits_factor: float = 0.0005, scales: tuple[int, ...] = (1, 2, 4),
                    schedule: bool = True) -> list[torch.Tensor]:
    """The per-pair terms of :func:`local_pod_loss` (factor and schedule applied, not yet divided by the number
    of pairs): which map the POD term holds fixed, and how hard."""
    if len(old) != len(new) or not old:
        raise ValueError(f"local_pod_loss needs equally many old and new maps, got {len(old)} and {len(new)}")
    terms: list[torch.Tensor] = []
    for i, (a, b) in enumerate(zip(old, new)):
        last = i == len(old) - 1
        if a.shape[1] != b.shape[1]:
            if not last:
                raise ValueError(f"only the last map (logits) may have extra channels; map {i}: {tuple(a.shape)} "
                                 f"vs {tuple(b.shape)}")
            b = torch.cat([b[:, :1] + b[:, c_old:].sum(dim=1, keepdim=True), b[:, 1:c_old]], dim=1)
        ea, eb = local_pod_embedding_fast(a.pow(2), scales), local_pod_embedding_fast(b.pow(2), scales)
        layer = torch.linalg.vector_norm(ea - eb, dim=-1).mean()
        layer = (logits_factor if last else factor) * layer
        if schedule:
            layer = layer * math.sqrt(n_classes / n_new)
        terms.append(layer)
    return terms


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
    generators from it with :func:`cemnist_baselines.trainer.make_generator` (never the global RNG)."""

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
      model's intermediate feature maps (see :func:`segnet_forward`) and the run's method ``state``. The old
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
    :data:`METHODS`; third-party methods are loaded by reference or entry point (:mod:`.plugins`). Each
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
    pod-scale``; docs/PROTOCOL.md section 6); :data:`METHODS` ``["plop_tuned"]`` is PLOP with factors chosen
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
        from .trainer import teacher_logits

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
        from .trainer import make_generator

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


METHODS: dict[str, Method] = {
    "naive": Method("naive"),
    "kd": KD("kd", uses_old_model=True),
    "lwf": LwF("lwf", uses_old_model=True),
    "mib": MiB("mib", uses_old_model=True, balanced_init=True),
    "joint": Method("joint", joint=True),
    "ilt": ILT("ilt", uses_old_model=True, features=True, cached_features=("enc3",)),
    "pl": PL("pl", uses_old_model=True),
    "plop": PLOP("plop", uses_old_model=True, old_model_per_batch=True, features=True, balanced_init=True),
    "plop_tuned": PLOP("plop_tuned", uses_old_model=True, old_model_per_batch=True, features=True, balanced_init=True,
                       pod_factor=0.01 / PLOP_TUNED_DIVISOR, pod_logits_factor=0.0005 / PLOP_TUNED_DIVISOR),
    "replay": Replay("replay"),
}
BUILTIN_METHODS: tuple[str, ...] = tuple(METHODS)


def get_method(name: str) -> Method:
    """The method called ``name``: a built-in, an installed plug-in (entry-point group
    ``cemnist_baselines.methods``) or a reference ``module:Class``; ValueError naming the valid names otherwise."""
    if name in METHODS:
        return METHODS[name]
    from .plugins import resolve_method

    return resolve_method(name)

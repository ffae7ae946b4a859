"""The loss formulas of the built-in methods, as pure functions of tensors (no model, no state).

Notation: ``z`` new logits [B, C, H, W], ``t`` frozen old-model logits [B, C_old, H, W] (C_old includes
background), ``y`` target channel indices [B, H, W] (255 = ignore). Every loss is a mean over pixels. Each
formula names the reference code it follows (the seed tutorial ``mapaf2/mnist-continual-seg``, ``fcdl94/MiB``,
``arthurdouillard/CVPR2021_PLOP``); docs/PROTOCOL.md sections 6 and 7 table where the baselines deviate.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cemnist_data.labels import IGNORE

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
    """PLOP's Local POD embedding of a square map [B, C, H, W] (PLOP ``train.py``, ``_local_pod`` with
    ``normalize=False``): for each scale s and each of the s x s regions of side k = W // s, the region's mean
    over width and over height, concatenated into [B, D].

    The entries are PLOP's in another order (one reshape per scale instead of a slice per region: far fewer
    autograd nodes); the losses use only norms of differences, which the order does not change."""
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
        ea, eb = local_pod_embedding(a.pow(2), scales), local_pod_embedding(b.pow(2), scales)
        layer = torch.linalg.vector_norm(ea - eb, dim=-1).mean()
        layer = (logits_factor if last else factor) * layer
        if schedule:
            layer = layer * math.sqrt(n_classes / n_new)
        terms.append(layer)
    return terms

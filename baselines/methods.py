"""Methods as a few loss terms on one shared trainer. Formulas follow issue 3 §2 (normative).

Notation: ``z`` new logits [B, C, H, W], ``t`` frozen old-model logits [B, C_old, H, W] (C_old includes
background), ``y`` target channel indices [B, H, W] (255 = ignore). Every loss is a mean over pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE = 255


def ce_loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over non-ignored pixels."""
    return F.cross_entropy(z, y, ignore_index=IGNORE)


def kd_loss(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """KD = -mean_pixels[(1/C_old) sum_{c<C_old} softmax(t)_c * log_softmax(z[:, :C_old])_c]."""
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


@dataclass(frozen=True)
class Method:
    """A continual-learning method = a few loss terms on the shared trainer.

    Subclass and override :meth:`loss` to add one (see ``KD`` and ``MiB``), then register it in
    :data:`METHODS`. ``loss`` is used for tasks t > 0 only: task 0 is plain CE for every incremental
    method, so naive, kd and mib share the task-0 model of a seed.
    """

    name: str
    uses_old_model: bool = False   # the trainer passes the frozen old model's logits as ``t``
    balanced_init: bool = False    # MiB's head init instead of the default one
    joint: bool = False            # all classes at once on the ``joint`` config

    def loss(self, z: torch.Tensor, y: torch.Tensor, t: torch.Tensor | None, *, c_old: int, kd_lambda: float) -> torch.Tensor:
        """Plain cross-entropy on the task mask (naive, joint)."""
        return ce_loss(z, y)

    def protocol_values(self) -> dict[str, object]:
        """Method-specific protocol values (e.g. a replay memory size): recorded in every result and part of
        the leaderboard row key. None for the built-in methods."""
        return {}


@dataclass(frozen=True)
class KD(Method):
    """CE + lambda * KD: output-level distillation only (LwF-style, Li & Hoiem 2016), lambda = 10.

    The KD term is the one of the MiB code (``fcdl94/MiB``, ``utils/loss.py``, ``KnowledgeDistillationLoss``
    with ``alpha=1``: mean over pixels of -(1/C_old) sum_c softmax(t)_c log_softmax(z[:C_old])_c). ILT
    (Michieli & Zanuttigh 2019) adds feature distillation on the encoder output; that is not part of ``kd``.
    """

    def loss(self, z, y, t, *, c_old, kd_lambda):  # type: ignore[override]
        return ce_loss(z, y) + kd_lambda * kd_loss(z, t)


@dataclass(frozen=True)
class MiB(Method):
    """UnCE + lambda * UnKD (+ balanced init, set by the flag)."""

    def loss(self, z, y, t, *, c_old, kd_lambda):  # type: ignore[override]
        return unbiased_ce_loss(z, y, c_old) + kd_lambda * unbiased_kd_loss(z, t)


METHODS: dict[str, Method] = {
    "naive": Method("naive"),
    "kd": KD("kd", uses_old_model=True),
    "mib": MiB("mib", uses_old_model=True, balanced_init=True),
    "joint": Method("joint", joint=True),
}


def get_method(name: str) -> Method:
    """The method called ``name``; ValueError listing the valid names otherwise."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)} (or 'all' in the CLI)")
    return METHODS[name]

"""PLOP with its POD factors scaled down for SimpleSegNet — the experiment of docs/PROTOCOL.md section 6.

With the reference factors (``pod_factor`` 0.01, ``pod_logits_factor`` 0.0005) PLOP's POD term of a model that
learns the new digits is thousands of times its cross-entropy on this unnormalised network, and PLOP does not
learn them (``python -m cemnist_baselines.study pod-scale``). These plug-ins scale both factors by 1/100 and
1/10,000 (the second puts the POD term of a fully drifted model at about the CE's order); everything else is
PLOP as in the package. Each is its own protocol value, so its rows never mix with the reference ``plop`` row.
Tuned on the validation pool (from the repository root):

    cemnist-baselines run --method examples.plop_scaled:PLOPScaled1e2 examples.plop_scaled:PLOPScaled1e4 \\
        --seeds 0 --eval-split validation --jobs 2 --out results/study/plop-scale
"""
from __future__ import annotations

from dataclasses import dataclass

from cemnist_baselines.methods import PLOP


@dataclass(frozen=True)
class PLOPScaled1e2(PLOP):
    """PLOP with ``pod_factor`` and ``pod_logits_factor`` divided by 100."""

    name: str = "plop_pod_div1e2"
    uses_old_model: bool = True
    old_model_per_batch: bool = True
    features: bool = True
    balanced_init: bool = True
    pod_factor: float = 0.01 / 100
    pod_logits_factor: float = 0.0005 / 100


@dataclass(frozen=True)
class PLOPScaled1e4(PLOPScaled1e2):
    """PLOP with ``pod_factor`` and ``pod_logits_factor`` divided by 10,000."""

    name: str = "plop_pod_div1e4"
    pod_factor: float = 0.01 / 10_000
    pod_logits_factor: float = 0.0005 / 10_000

"""PLOP with its POD factors scaled down for SimpleSegNet — the validation search of docs/PROTOCOL.md section 6.

With the reference factors (``pod_factor`` 0.01, ``pod_logits_factor`` 0.0005) PLOP's POD term of a model that
learns the new digits is far larger than its cross-entropy on this unnormalised network
(``python -m cemnist_baselines.study pod-scale``). These plug-ins divide both factors by 1,000, 10,000 and
100,000; everything else is PLOP as in the package (maps, median rule, thresholds). Each is its own protocol
value, so its rows never mix with the reference ``plop`` row. The search, on the validation pool (from the
repository root; about 25 min per run on one core):

    cemnist-baselines run --method examples.plop_scaled:PLOPDiv1e3 examples.plop_scaled:PLOPDiv1e4 \\
        examples.plop_scaled:PLOPDiv1e5 --seeds 0 --eval-split validation --jobs 1 --out results/study/plop-search

The chosen divisor is the built-in ``plop_tuned``.
"""
from __future__ import annotations

from dataclasses import dataclass

from cemnist_baselines.methods import PLOP


@dataclass(frozen=True)
class PLOPDiv1e3(PLOP):
    """PLOP with ``pod_factor`` and ``pod_logits_factor`` divided by 1,000."""

    name: str = "plop_pod_div1e3"
    uses_old_model: bool = True
    old_model_per_batch: bool = True
    features: bool = True
    balanced_init: bool = True
    pod_factor: float = 0.01 / 1_000
    pod_logits_factor: float = 0.0005 / 1_000


@dataclass(frozen=True)
class PLOPDiv1e4(PLOPDiv1e3):
    """PLOP with ``pod_factor`` and ``pod_logits_factor`` divided by 10,000."""

    name: str = "plop_pod_div1e4"
    pod_factor: float = 0.01 / 10_000
    pod_logits_factor: float = 0.0005 / 10_000


@dataclass(frozen=True)
class PLOPDiv1e5(PLOPDiv1e3):
    """PLOP with ``pod_factor`` and ``pod_logits_factor`` divided by 100,000."""

    name: str = "plop_pod_div1e5"
    pod_factor: float = 0.01 / 100_000
    pod_logits_factor: float = 0.0005 / 100_000

"""A plug-in made by subclassing a built-in: the tutorial's kd with its distillation term scaled by 0.5.

Built-in methods carry their flags (``uses_old_model``, ``features``, ...) as class defaults, so a subclass keeps
them and only states what differs: here the name, one constant and the loss. Run it from the repository root:

    cemnist-baselines run --method examples.half_kd_plugin:HalfKD --preset tiny --out runs/half
"""
from __future__ import annotations

from dataclasses import dataclass

from cemnist_baselines.losses import ce_loss, tutorial_kd_loss
from cemnist_baselines.methods import KD


@dataclass(frozen=True)
class HalfKD(KD):
    """CE + kd_scale * lambda * KD (:func:`tutorial_kd_loss`); ``uses_old_model`` comes from :class:`KD`."""

    name: str = "halfkd"     # result files are named after it; must not be a built-in's name
    kd_scale: float = 0.5

    def loss(self, z, y, t, *, c_old, kd_lambda):  # type: ignore[override]
        return ce_loss(z, y) + self.kd_scale * kd_lambda * tutorial_kd_loss(z, t)

    def protocol_values(self) -> dict[str, object]:
        return {**super().protocol_values(), "kd_scale": self.kd_scale}  # recorded; splits leaderboard rows

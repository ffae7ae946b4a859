"""Reference continual-segmentation baselines on CEMNIST: naive, kd, lwf, ilt, pl, mib, plop, plop_tuned,
replay and joint (:data:`METHODS`; docs/PROTOCOL.md describes each and its reference).

One shared trainer (:mod:`cemnist_baselines.trainer`); a method is a few loss terms (:mod:`.losses`) and hooks
(:mod:`.methods`), registered in :mod:`.registry`. Results follow ``docs/INTERFACES.md``.
"""
from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("cemnist")
except _metadata.PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from .config import PRESETS, TrainConfig, get_config  # noqa: E402
from .registry import METHODS  # noqa: E402
from .model import SimpleSegNet  # noqa: E402

__all__ = ["PRESETS", "TrainConfig", "get_config", "METHODS", "SimpleSegNet", "__version__"]

"""Reference continual-segmentation baselines on CEMNIST: naive, KD (ILT-style), MiB and joint.

One shared trainer (:mod:`cemnist_baselines.trainer`); a method is a few loss terms
(:mod:`cemnist_baselines.methods`). Results follow ``docs/INTERFACES.md``.
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

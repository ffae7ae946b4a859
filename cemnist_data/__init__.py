"""CEMNIST (Continual Extended MNIST): a deterministic toy benchmark for continual semantic segmentation.

>>> from cemnist_data import load_dataset, load_tensors, CemnistSegmentation
>>> ds = load_dataset("cemnist", "overlap-task2")             # DatasetDict: train / validation / test
>>> images, masks = load_tensors("cemnist", task=2)         # uint8 torch tensors [N, 60, 60]
>>> train = CemnistSegmentation(task=2, split="train")      # a torch.utils.data.Dataset

The distribution is called ``cemnist`` (``pip install cemnist``); it installs two import packages,
``cemnist_data`` (this one: data, loader, CLI) and ``cemnist_baselines``. Importing this package is
cheap: ``torch`` and ``datasets`` are imported by the functions that need them, on first use.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version as _version
from typing import Any

from .registry import LATEST_VERSION
from .spec import MODES, SPLITS, CemnistSpec, config_name, parse_setting

try:
    __version__ = _version("cemnist")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

_LAZY = {
    "CemnistIntegrityError": "loader",
    "cache_root": "loader",
    "load_dataset": "loader",
    "release_info": "loader",
    "resolve_release": "loader",
    "verify_release": "loader",
    "MnistIntegrityError": "mnist",
    "load_mnist": "mnist",
    "build_release": "release",
    "load_tensors": "tensors",
    "to_numpy": "tensors",
    "to_tensors": "tensors",
    "CemnistSegmentation": "torch_views",
    "CemnistScenario": "torch_views",
    "ID2LABEL": "labels",
    "LABEL2ID": "labels",
    "publish_release": "publish",
}

__all__ = sorted(["CemnistSpec", "MODES", "SPLITS", "LATEST_VERSION", "config_name", "parse_setting", "__version__", *_LAZY])


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use (keeps ``import cemnist_data`` fast)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

"""Progress bars that honour ``--quiet``, the ``TQDM_DISABLE`` / ``HF_DATASETS_DISABLE_PROGRESS_BARS`` /
``HF_HUB_DISABLE_PROGRESS_BARS`` variables and the switches of ``datasets`` and ``huggingface_hub``."""

from __future__ import annotations

import os
import sys

__all__ = ["progress_enabled"]

_TRUE = {"1", "true", "yes", "on"}


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _switched_off_by_loaded_libraries() -> bool:
    """``datasets.disable_progress_bars()`` or ``huggingface_hub.utils.disable_progress_bars()`` was called.

    Only libraries that are already imported are asked (asking must not import them: ``import cemnist_data``
    stays cheap).
    """
    ds = sys.modules.get("datasets")
    check = getattr(ds, "are_progress_bars_disabled", None) if ds is not None else None
    if check is not None and check():
        return True
    hub_utils = sys.modules.get("huggingface_hub.utils")
    check = getattr(hub_utils, "are_progress_bars_disabled", None) if hub_utils is not None else None
    return bool(check is not None and check())


def progress_enabled(requested: bool = True) -> bool:
    """Whether to draw a progress bar: ``requested`` (False for ``--quiet``), none of ``TQDM_DISABLE``,
    ``HF_DATASETS_DISABLE_PROGRESS_BARS`` and ``HF_HUB_DISABLE_PROGRESS_BARS`` set to a true value
    (1/true/yes/on), and neither ``datasets.disable_progress_bars()`` nor ``huggingface_hub``'s
    ``disable_progress_bars()`` in force (asked only when those modules are loaded).

    tqdm reads ``TQDM_DISABLE`` only for calls that do not pass ``disable=`` themselves; every bar of
    this package passes ``disable=not progress_enabled(...)``, so all the conventions always apply.
    """
    if not requested or any(_env_true(v) for v in ("TQDM_DISABLE", "HF_DATASETS_DISABLE_PROGRESS_BARS",
                                                    "HF_HUB_DISABLE_PROGRESS_BARS")):
        return False
    return not _switched_off_by_loaded_libraries()

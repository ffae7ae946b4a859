"""Progress bars that honour ``--quiet`` and the ``TQDM_DISABLE`` / ``HF_DATASETS_DISABLE_PROGRESS_BARS`` conventions."""

from __future__ import annotations

import os

__all__ = ["progress_enabled"]

_TRUE = {"1", "true", "yes", "on"}


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def progress_enabled(requested: bool = True) -> bool:
    """Whether to draw a progress bar: ``requested`` (False for ``--quiet``) and neither
    ``TQDM_DISABLE`` nor ``HF_DATASETS_DISABLE_PROGRESS_BARS`` set to a true value (1/true/yes/on).

    tqdm reads ``TQDM_DISABLE`` only for calls that do not pass ``disable=`` themselves; every bar of
    this package passes ``disable=not progress_enabled(...)``, so both conventions always apply.
    """
    return bool(requested) and not (_env_true("TQDM_DISABLE") or _env_true("HF_DATASETS_DISABLE_PROGRESS_BARS"))

"""The fast path to training: whole splits as uint8 torch tensors, decoded column by column.

Shapes: :func:`load_tensors` and :func:`to_tensors` give images and masks as ``[N, 60, 60]`` (no
channel axis; masks hold label ids). ``datasets``' own torch format,
``load_dataset(...).with_format("torch")``, gives ``[N, 1, 60, 60]`` for the same pixels (its image
formatter adds a channel axis); :class:`cemnist_data.CemnistSegmentation` gives one image as
``[1, 60, 60]`` and its mask as ``[60, 60]``, the shapes ``torch.nn.CrossEntropyLoss`` expects.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .content import IMAGE_COLUMNS, pad_lists
from .png import decode_png_column

if TYPE_CHECKING:
    import datasets
    import torch

__all__ = ["to_tensors", "load_tensors", "to_numpy"]

_LIST_COLUMNS = ("digits", "mnist_index", "top", "left")


def to_numpy(ds: "datasets.Dataset", *, columns: Sequence[str] = ("image", "mask")) -> tuple[np.ndarray, ...]:
    """Decode columns of a CEMNIST split into NumPy arrays, whole columns at once.

    Image columns give uint8 ``[N, 60, 60]`` (masks: label ids); ``task`` int64 ``[N]``; list columns
    (``digits``, ``mnist_index``, ``top``, ``left``) int64 ``[N, 4]`` padded with -1. Row order
    (including a ``shuffle``/``select`` applied to ``ds``) is kept.
    """
    import datasets

    if not isinstance(ds, datasets.Dataset):
        raise ValueError(f"expected a datasets.Dataset (one split), got {type(ds).__name__}; index a DatasetDict by split first")
    unknown = [c for c in columns if c not in ds.column_names]
    if unknown:
        raise ValueError(f"unknown columns {unknown}; the dataset has {ds.column_names}")
    table = ds.with_format("arrow")[:]
    out = []
    for c in columns:
        col = table.column(c)
        if c in IMAGE_COLUMNS:
            out.append(decode_png_column(col, name=c))
        elif c in _LIST_COLUMNS:
            out.append(pad_lists(col))
        elif c == "task":
            out.append(col.to_numpy().astype(np.int64))
        else:
            raise ValueError(f"column {c!r} has no array form; use ds[{c!r}]")
    return tuple(out)


def to_tensors(ds: "datasets.Dataset", *, columns: Sequence[str] = ("image", "mask")) -> tuple["torch.Tensor", ...]:
    """Like :func:`to_numpy`, as torch tensors (uint8 for images and masks, int64 otherwise)."""
    import torch

    return tuple(torch.from_numpy(a) for a in to_numpy(ds, columns=columns))


def load_tensors(
    path: str = "cemnist",
    *,
    task: int | None = None,
    config: str | None = None,
    split: str = "train",
    mode: str | None = None,
    version: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    columns: Sequence[str] = ("image", "mask"),
    device: "torch.device | str | None" = None,
    dtype: "torch.dtype | None" = None,
) -> tuple["torch.Tensor", ...]:
    """Load one split and return its columns as tensors: ``images, masks = load_tensors(task=2)``.

    Images and masks are ``[N, 60, 60]`` (see the module docstring for the other paths' shapes).
    ``split`` may be sliced (``"train[:10%]"``). ``device`` moves every tensor there. ``dtype`` is the
    dtype of the ``image`` column (default uint8, values 0-255); a floating dtype gives values scaled to
    [0, 1]. Masks keep uint8 label ids, other columns int64, whatever ``dtype`` is.
    """
    import torch

    from .loader import load_dataset

    if split is None or not isinstance(split, str):
        raise ValueError(f"load_tensors needs one split: 'train', 'validation' or 'test' (slices allowed), got {split!r}")
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not (dtype.is_floating_point or dtype == torch.uint8)):
        raise ValueError(f"dtype must be torch.uint8 or a floating dtype (images scaled to [0, 1]), got {dtype!r}")
    ds = load_dataset(path, task=task, config=config, split=split, mode=mode, version=version, cache_dir=cache_dir)
    out = list(to_tensors(ds, columns=columns))
    for i, c in enumerate(columns):
        t = out[i].to(device) if device is not None else out[i]
        if c == "image" and dtype is not None and dtype != torch.uint8:
            t = t.to(dtype).div_(255.0)
        out[i] = t
    return tuple(out)

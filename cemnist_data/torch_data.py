"""The fast path to training: whole splits as uint8 torch tensors, decoded column by column."""

from __future__ import annotations

import os
from collections.abc import Sequence

import datasets
import numpy as np
import torch

from .content import IMAGE_COLUMNS, pad_lists
from .png import decode_png_column

__all__ = ["to_tensors", "load_tensors", "to_numpy"]

_LIST_COLUMNS = ("digits", "mnist_index", "top", "left")


def to_numpy(ds: datasets.Dataset, *, columns: Sequence[str] = ("image", "mask")) -> tuple[np.ndarray, ...]:
    """Decode columns of a CEMNIST split into NumPy arrays, whole columns at once.

    Image columns give uint8 ``[N, 60, 60]``; ``task`` int64 ``[N]``; list columns (``digits``,
    ``mnist_index``, ``top``, ``left``) int64 ``[N, 4]`` padded with -1. Row order (including a
    ``shuffle``/``select`` applied to ``ds``) is kept.
    """
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


def to_tensors(ds: datasets.Dataset, *, columns: Sequence[str] = ("image", "mask")) -> tuple[torch.Tensor, ...]:
    """Like :func:`to_numpy`, as torch tensors (uint8 for images and masks, int64 otherwise)."""
    return tuple(torch.from_numpy(a) for a in to_numpy(ds, columns=columns))


def load_tensors(
    path: str = "cemnist",
    *,
    task: int | None = None,
    config: str | None = None,
    split: str = "train",
    mode: str = "overlap",
    version: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    columns: Sequence[str] = ("image", "mask"),
) -> tuple[torch.Tensor, ...]:
    """Load one split and return its columns as tensors: ``images, masks = load_tensors(task=2)``."""
    from .loader import load_dataset

    if split is None:
        raise ValueError("load_tensors needs one split: 'train', 'validation' or 'test'")
    ds = load_dataset(path, task=task, config=config, split=split, mode=mode, version=version, cache_dir=cache_dir)
    return to_tensors(ds, columns=columns)

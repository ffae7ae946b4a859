"""PyTorch habits: a ``torch.utils.data.Dataset`` per task and split, and a scenario to iterate over tasks.

>>> from cemnist_data import CemnistSegmentation, CemnistScenario
>>> train = CemnistSegmentation(task=2, split="train")            # like torchvision / MedMNIST
>>> image, mask = train[0]                                        # float32 [1, 60, 60] in [0, 1], int64 [60, 60]
>>> for task_id, taskset in enumerate(CemnistScenario(split="train")):   # like Continuum
...     loader = torch.utils.data.DataLoader(taskset, batch_size=72, shuffle=True)

Both are thin views of the arrays that :func:`cemnist_data.load_tensors` gives: the whole split is
decoded once into uint8 tensors, and an item is a view of one row converted on access.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import Dataset

from .torch_data import load_tensors

__all__ = ["CemnistSegmentation", "CemnistScenario"]


class CemnistSegmentation(Dataset):
    """One split of one CEMNIST config as a map-style ``torch.utils.data.Dataset``.

    ``CemnistSegmentation(task=2, split="train", mode="overlap")`` (or ``config="joint"``). An item is
    ``(image, mask)``: ``image`` float32 ``[1, 60, 60]`` in [0, 1], ``mask`` int64 ``[60, 60]`` label ids
    (0 background, d + 1 digit d), then ``transform(image)`` and ``target_transform(mask)`` when given.
    ``mask_column="full_mask"`` gives every digit labelled. The decoded uint8 arrays are in
    ``.images`` and ``.masks`` (``[N, 60, 60]``).
    """

    def __init__(
        self,
        *,
        task: int | None = None,
        split: str = "train",
        mode: str | None = None,
        config: str | None = None,
        transform: Callable[[torch.Tensor], Any] | None = None,
        target_transform: Callable[[torch.Tensor], Any] | None = None,
        mask_column: str = "mask",
        path: str = "cemnist",
        version: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if mask_column not in ("mask", "full_mask"):
            raise ValueError(f"mask_column must be 'mask' or 'full_mask', got {mask_column!r}")
        for name, fn in (("transform", transform), ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise ValueError(f"{name} must be callable or None, got {type(fn).__name__}")
        self.images, self.masks = load_tensors(path, task=task, config=config, split=split, mode=mode,
                                               version=version, cache_dir=cache_dir, columns=("image", mask_column))
        self.task, self.split, self.mode, self.config = task, split, mode, config
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, int):
            index = int(index)  # numpy / torch integer scalars
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for a split of {n} images")
        image = self.images[index].unsqueeze(0).to(torch.float32).div_(255.0)
        mask = self.masks[index].to(torch.int64)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            mask = self.target_transform(mask)
        return image, mask

    def __repr__(self) -> str:
        what = f"config={self.config!r}" if self.config is not None else f"task={self.task}, mode={self.mode or 'overlap'!r}"
        return f"CemnistSegmentation({what}, split={self.split!r}, n={len(self)})"


class CemnistScenario:
    """The tasks of a release in order, one :class:`CemnistSegmentation` per task (loaded on access).

    ``for task_id, taskset in enumerate(CemnistScenario(split="train", mode="overlap")): ...``;
    ``len(scenario)`` is the number of tasks, ``scenario[t]`` task ``t``, ``scenario.tasks`` the digits
    of each task. Other keyword arguments go to :class:`CemnistSegmentation`.
    """

    def __init__(self, *, split: str = "train", mode: str = "overlap", path: str = "cemnist",
                 version: str | None = None, cache_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        from .loader import release_info
        from .spec import MODES

        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid modes: {list(MODES)}")
        for key in ("task", "config"):
            if key in kwargs:
                raise ValueError(f"{key}= selects one task; a scenario holds them all (index it: scenario[t])")
        self.split, self.mode, self.path, self.version, self.cache_dir = split, mode, path, version, cache_dir
        self.kwargs = kwargs
        self.tasks: list[list[int]] = [list(t) for t in release_info(path, version=version, cache_dir=cache_dir)["tasks"]]

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, task: int) -> CemnistSegmentation:
        if isinstance(task, bool) or not isinstance(task, int) or not 0 <= task < len(self):
            raise IndexError(f"task must be an integer in [0, {len(self) - 1}], got {task!r}")
        return CemnistSegmentation(task=task, split=self.split, mode=self.mode, path=self.path, version=self.version,
                                   cache_dir=self.cache_dir, **self.kwargs)

    def __iter__(self) -> Iterator[CemnistSegmentation]:
        for t in range(len(self)):
            yield self[t]

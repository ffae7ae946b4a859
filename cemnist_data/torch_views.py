"""PyTorch habits: a ``torch.utils.data.Dataset`` per task and split, and a scenario to iterate over tasks.

>>> from cemnist_data import CemnistSegmentation, CemnistScenario
>>> train = CemnistSegmentation(task=2, split="train")            # like torchvision / MedMNIST
>>> image, mask = train[0]                                        # float32 [1, 60, 60] in [0, 1], int64 [60, 60]
>>> flip = CemnistSegmentation(task=2, train=True, transforms=lambda x, y: (x.flip(-1), y.flip(-1)))  # joint
>>> for task_id, taskset in enumerate(CemnistScenario(split="train")):   # like Continuum
...     loader = torch.utils.data.DataLoader(taskset, batch_size=72, shuffle=True)

Both are thin views of the arrays that :func:`cemnist_data.load_tensors` gives: the whole split is
decoded once into uint8 tensors, and an item is a view of one row converted on access.

torchvision's dataset conventions: ``transforms(image, mask)`` transforms both together (geometric
augmentations must), ``transform`` only the image, ``target_transform`` only the mask; ``root=`` is the
cache folder, ``train=True/False`` the train or test split, ``download=`` is accepted and changes nothing.
When torchvision imports, items are ``tv_tensors.Image`` and ``tv_tensors.Mask``, so a
``torchvision.transforms.v2`` pipeline called on ``(image, mask)`` moves the mask with the image; without
torchvision they are plain tensors, and a joint ``transforms`` must move both itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import Dataset

from .tensors import load_tensors

__all__ = ["CemnistSegmentation", "CemnistScenario", "tv_tensor_types"]

log = logging.getLogger("cemnist")
_TV: tuple[type, type] | None | bool = False  # not looked up yet


def tv_tensor_types() -> tuple[type, type] | None:
    """``(tv_tensors.Image, tv_tensors.Mask)`` when torchvision imports, else None (looked up once).

    A torchvision that is installed but cannot load (e.g. a CUDA build beside a CPU-only torch) counts as
    absent: items are then plain tensors, and the reason is logged on the ``cemnist`` logger.
    """
    global _TV
    if _TV is False:
        try:
            from torchvision import tv_tensors
        except Exception as exc:  # noqa: BLE001  ImportError, or RuntimeError/OSError from a broken build
            if not isinstance(exc, ModuleNotFoundError):
                log.info("CEMNIST: torchvision does not import (%s: %s); items are plain tensors", type(exc).__name__, exc)
            _TV = None
        else:
            _TV = (tv_tensors.Image, tv_tensors.Mask)
    return _TV  # type: ignore[return-value]


_TRAIN_SPLIT = {True: "train", False: "test"}


def _torchvision_args(*, split: str | None, train: bool | None, root: str | os.PathLike[str] | None,
                      cache_dir: str | os.PathLike[str] | None) -> tuple[str, str | os.PathLike[str] | None]:
    """``(split, cache_dir)`` from torchvision's ``train`` / ``root`` and ours; contradictions are a ValueError."""
    if train is not None:
        if not isinstance(train, bool):
            raise ValueError(f"train must be True (the train split), False (the test split) or None, got {train!r}")
        if split is not None and str(split).split("[")[0] != _TRAIN_SPLIT[train]:
            raise ValueError(f"train={train} (the {_TRAIN_SPLIT[train]!r} split) contradicts split={split!r}; pass one of them")
    if root is not None and cache_dir is not None and os.fspath(root) != os.fspath(cache_dir):
        raise ValueError(f"root={os.fspath(root)!r} contradicts cache_dir={os.fspath(cache_dir)!r}; both name the "
                         "cache folder, pass one of them")
    split = split if split is not None else _TRAIN_SPLIT[train if train is not None else True]
    return split, (cache_dir if cache_dir is not None else root)


class CemnistSegmentation(Dataset):
    """One split of one CEMNIST config as a map-style ``torch.utils.data.Dataset``.

    ``CemnistSegmentation(task=2, split="train", mode="overlap")`` (or ``config="joint"``). An item is
    ``(image, mask)``: ``image`` float32 ``[1, 60, 60]`` in [0, 1], ``mask`` int64 ``[60, 60]`` label ids
    (0 background, d + 1 digit d), as ``tv_tensors.Image`` / ``tv_tensors.Mask`` when torchvision imports
    (plain tensors otherwise). Then, as torchvision's datasets do: ``transforms(image, mask)`` (both
    together: use it for flips, crops, rotations), or ``transform(image)`` and ``target_transform(mask)``
    (each alone: photometric changes only); passing ``transforms`` with either of the others is a
    ``ValueError``. ``mask_column="full_mask"`` gives every digit labelled. The decoded uint8 arrays are
    in ``.images`` and ``.masks`` (``[N, 60, 60]``).

    torchvision's arguments: ``root`` is the cache folder (the same as ``cache_dir``), ``train=True`` /
    ``False`` the ``"train"`` / ``"test"`` split (``split`` may be given instead, not both differently),
    ``download`` is accepted and changes nothing: the release is always taken from the verified cache,
    the Hub or rebuilt from the MNIST copy inside the package.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        task: int | None = None,
        split: str | None = None,
        train: bool | None = None,
        mode: str | None = None,
        config: str | None = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
        download: bool = False,
        mask_column: str = "mask",
        path: str = "cemnist",
        version: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if mask_column not in ("mask", "full_mask"):
            raise ValueError(f"mask_column must be 'mask' or 'full_mask', got {mask_column!r}")
        for name, fn in (("transform", transform), ("target_transform", target_transform), ("transforms", transforms)):
            if fn is not None and not callable(fn):
                raise ValueError(f"{name} must be callable or None, got {type(fn).__name__}")
        if transforms is not None and (transform is not None or target_transform is not None):
            raise ValueError("pass either transforms= (called on (image, mask) together) or transform= / "
                             "target_transform= (each on its own), not both, as in torchvision")
        if not isinstance(download, bool):
            raise ValueError(f"download must be True or False, got {download!r}")
        if download:
            log.info("CEMNIST: download=True changes nothing: the release comes from the verified cache, the Hub or "
                     "a local rebuild, whichever is first available")
        split, cache_dir = _torchvision_args(split=split, train=train, root=root, cache_dir=cache_dir)
        self.images, self.masks = load_tensors(path, task=task, config=config, split=split, mode=mode,
                                               version=version, cache_dir=cache_dir, columns=("image", mask_column))
        self.root = cache_dir
        self.task, self.split, self.mode, self.config = task, split, mode, config
        self.transform, self.target_transform, self.transforms = transform, target_transform, transforms

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
        types = tv_tensor_types()
        if types is not None:
            image, mask = types[0](image), types[1](mask)
        if self.transforms is not None:
            return self.transforms(image, mask)
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
    of each task. ``root`` / ``train`` as in :class:`CemnistSegmentation`; other keyword arguments
    (``transforms``, ``mask_column``, ...) go to it.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, split: str | None = None,
                 train: bool | None = None, mode: str = "overlap", path: str = "cemnist", version: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        from .loader import release_info
        from .spec import MODES

        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid modes: {list(MODES)}")
        for key in ("task", "config"):
            if key in kwargs:
                raise ValueError(f"{key}= selects one task; a scenario holds them all (index it: scenario[t])")
        split, cache_dir = _torchvision_args(split=split, train=train, root=root, cache_dir=cache_dir)
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

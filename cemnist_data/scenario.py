"""The class-incremental protocol: which images each task renders and which labels its masks keep.

* Train / validation of task ``t`` (mode ``overlap``): digit classes drawn uniformly from all ten
  digits; mode ``disjoint``: only from the classes seen up to ``t``. An image is kept only when its
  full label map has a pixel of a current-task digit. ``mask`` keeps the labels of the current
  task's digits; every other digit becomes background 0 (background shift).
* Test: one pool of images from MNIST-test, digits from all ten classes. Task ``t``'s test split
  holds the pool images with at least one digit of a class seen up to ``t``; its ``mask`` keeps the
  labels of seen classes, future classes become 0.
* ``joint``: the union of the ``overlap`` tasks' train (validation) images with ``mask = full_mask``;
  test is the whole pool with every class labelled.

Every label rule here is a lookup table applied to the full label map (label ``d + 1`` for digit
``d``, 0 for background), so a view never changes which pixels belong to a digit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .mnist import MnistData
from .render import DigitSource, Rendered, sample_stream
from .rng import stream_key
from .spec import MODES, SPLITS, CemnistSpec

__all__ = ["Stream", "train_stream", "pool_stream", "label_lut", "apply_view", "stream_source", "in_test_split"]

_MODE_ID = {"overlap": 1, "disjoint": 2, "pool": 3}
_SPLIT_ID = {"train": 1, "validation": 2, "test": 3}


@dataclass(frozen=True)
class Stream:
    """A named, index-addressable sequence of rendered images."""

    name: str
    key: int
    size: int
    source: str  # "train" (MNIST-train range), "validation" (MNIST-train range) or "test" (MNIST-test)
    pool: tuple[int, ...]
    required: tuple[int, ...] | None

    def render(self, spec: CemnistSpec, sources: dict[str, DigitSource], start: int, stop: int) -> Rendered:
        """Render images ``start <= i < stop`` of this stream."""
        if not 0 <= start <= stop <= self.size:
            raise ValueError(f"range [{start}, {stop}) outside stream {self.name} of size {self.size}")
        return sample_stream(
            spec,
            sources[self.source],
            key=self.key,
            indices=np.arange(start, stop),
            pool=list(self.pool),
            required=None if self.required is None else list(self.required),
        )


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {list(MODES)}")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")


def train_stream(spec: CemnistSpec, *, mode: str, task: int, split: str) -> Stream:
    """The train or validation stream of ``task`` in ``mode``."""
    _check_mode(mode)
    spec.check_task(task)
    if split not in ("train", "validation"):
        raise ValueError(f"train_stream renders 'train' or 'validation', got {split!r}; the test split comes from the pool")
    pool = tuple(range(10)) if mode == "overlap" else tuple(sorted(spec.seen_classes(task)))
    size = spec.train_per_task if split == "train" else spec.validation_per_task
    return Stream(
        name=f"{mode}/{split}/task{task}",
        key=stream_key(spec.seed, _MODE_ID[mode], _SPLIT_ID[split], task),
        size=size,
        source=split,
        pool=pool,
        required=tuple(sorted(spec.tasks[task])),
    )


def pool_stream(spec: CemnistSpec) -> Stream:
    """The shared test pool (MNIST-test digits, all ten classes)."""
    return Stream(
        name="pool/test",
        key=stream_key(spec.seed, _MODE_ID["pool"], _SPLIT_ID["test"], 0),
        size=spec.test_pool,
        source="test",
        pool=tuple(range(10)),
        required=None,
    )


def stream_source(spec: CemnistSpec, mnist: MnistData) -> dict[str, DigitSource]:
    """The digit sources of the three splits; no MNIST instance is shared between them."""
    lo, hi = spec.train_mnist_range
    vlo, vhi = spec.validation_mnist_range
    return {
        "train": DigitSource.from_range(mnist.train_images, mnist.train_labels, split="train", start=lo, stop=hi),
        "validation": DigitSource.from_range(mnist.train_images, mnist.train_labels, split="train", start=vlo, stop=vhi),
        "test": DigitSource.from_range(mnist.test_images, mnist.test_labels, split="test", start=0, stop=len(mnist.test_labels)),
    }


def label_lut(keep_digits: Iterable[int]) -> np.ndarray:
    """Lookup table over full labels 0..255: keeps ``d + 1`` for the given digits, maps the rest to 0."""
    lut = np.zeros(256, dtype=np.uint8)
    for d in keep_digits:
        lut[d + 1] = d + 1
    lut[255] = 255
    return lut


def view_digits(spec: CemnistSpec, *, config_task: int | None, split: str) -> list[int]:
    """Digits whose labels a config's ``mask`` keeps (``config_task=None`` means ``joint``)."""
    _check_split(split)
    if config_task is None:
        return list(range(10))
    if split == "test":
        return spec.seen_classes(config_task)
    return list(spec.tasks[config_task])


def apply_view(full_masks: np.ndarray, keep_digits: Iterable[int]) -> np.ndarray:
    """The task ``mask``: full label map with every digit outside ``keep_digits`` set to background."""
    return label_lut(keep_digits)[full_masks]


def in_test_split(classes: np.ndarray, seen: Iterable[int]) -> np.ndarray:
    """Which pool images belong to a test split: those with at least one digit of a seen class."""
    return np.isin(classes, np.asarray(list(seen), dtype=classes.dtype)).any(axis=1)

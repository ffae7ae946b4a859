"""The dataset specification: CEMNIST is a pure function of one :class:`CemnistSpec`."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CemnistSpec",
    "MODES",
    "SPLITS",
    "parse_setting",
    "config_name",
    "parse_config_name",
]

MODES: tuple[str, ...] = ("overlap", "disjoint")
SPLITS: tuple[str, ...] = ("train", "validation", "test")
NUM_CLASSES = 10
_SETTING_RE = re.compile(r"^(\d+)-(\d+)$")


def _check_class_order(class_order: tuple[int, ...] | list[int] | None) -> tuple[int, ...]:
    if class_order is None:
        return tuple(range(NUM_CLASSES))
    order = tuple(int(c) for c in class_order)
    if sorted(order) != list(range(NUM_CLASSES)):
        raise ValueError(
            f"class_order must be a permutation of the digits 0..9 (each exactly once), got {list(order)}"
        )
    return order


def parse_setting(setting: str, class_order: tuple[int, ...] | list[int] | None = None) -> list[list[int]]:
    """Split the digits into class-incremental tasks for an ``"N-M"`` setting.

    Task 0 learns the first ``N`` digits of ``class_order``, every later task the next ``M``.
    ``(10 - N)`` must be a positive multiple of ``M``. Returns the digits of each task.

    >>> parse_setting("2-2")
    [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    """
    order = _check_class_order(class_order)
    m = _SETTING_RE.match(setting) if isinstance(setting, str) else None
    if m is None:
        raise ValueError(f"unknown setting {setting!r}: expected 'N-M' with integers, e.g. '2-2', '5-1', '4-2'")
    n_first, n_step = int(m.group(1)), int(m.group(2))
    if not 1 <= n_first < NUM_CLASSES or n_step < 1 or (NUM_CLASSES - n_first) % n_step != 0:
        raise ValueError(
            f"unknown setting {setting!r}: need 1 <= N <= 9, M >= 1 and (10 - N) divisible by M "
            f"(valid examples: '2-2', '5-1', '4-3', '1-1', '6-2')"
        )
    tasks = [list(order[:n_first])]
    for start in range(n_first, NUM_CLASSES, n_step):
        tasks.append(list(order[start : start + n_step]))
    return tasks


def config_name(mode: str, task: int | None) -> str:
    """Name of the Hub config holding ``task`` in ``mode`` (e.g. ``overlap-task2``; ``None`` = ``joint``, every
    task's images with their full masks)."""
    return "joint" if task is None else f"{mode}-task{task}"


def parse_config_name(name: str) -> tuple[str, int | None]:
    """Inverse of :func:`config_name`; ``"joint"`` gives ``("joint", None)``."""
    if name == "joint":
        return "joint", None
    m = re.match(r"^(overlap|disjoint)-task(\d+)$", name)
    if m is None:
        raise ValueError(f"unknown config {name!r}: expected 'joint', 'overlap-task<t>' or 'disjoint-task<t>'")
    return m.group(1), int(m.group(2))


@dataclass(frozen=True)
class CemnistSpec:
    """Everything the dataset depends on. Equal specs give byte-identical datasets.

    The defaults are the published ``1.0.0`` release.
    """

    version: str = "1.0.0"
    seed: int = 0
    setting: str = "2-2"
    class_order: tuple[int, ...] = tuple(range(NUM_CLASSES))
    train_per_task: int = 2500
    validation_per_task: int = 500
    test_pool: int = 5000
    canvas: int = 60
    digit_size: int = 28
    min_digits: int = 2
    max_digits: int = 4
    max_iou: tuple[int, int] = (1, 4)  # IoU <= 1/4, kept as an exact fraction
    train_mnist_range: tuple[int, int] = (0, 50000)  # MNIST-train [start, stop)
    validation_mnist_range: tuple[int, int] = (50000, 60000)  # MNIST-train [start, stop)
    placement_tries: int = 64  # position tries per digit before all digits of the image are placed again
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_order", _check_class_order(self.class_order))
        object.__setattr__(self, "max_iou", tuple(self.max_iou))
        object.__setattr__(self, "train_mnist_range", tuple(self.train_mnist_range))
        object.__setattr__(self, "validation_mnist_range", tuple(self.validation_mnist_range))
        parse_setting(self.setting, self.class_order)
        for name in ("train_per_task", "validation_per_task", "test_pool"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be an integer in [0, 2**63), got {self.seed!r}")
        if not 1 <= self.min_digits <= self.max_digits <= 4:
            raise ValueError(
                f"need 1 <= min_digits <= max_digits <= 4, got min_digits={self.min_digits}, max_digits={self.max_digits}"
            )
        if self.digit_size != 28:
            raise ValueError(f"digit_size must be 28 (MNIST digits are not resized), got {self.digit_size}")
        if not 28 <= self.canvas <= 256:
            raise ValueError(f"canvas must be in [28, 256] pixels, got {self.canvas}")
        num, den = self.max_iou
        if not (0 <= num <= den and den > 0):
            raise ValueError(f"max_iou must be a fraction num/den in [0, 1], got {self.max_iou}")
        lo, hi = self.train_mnist_range
        vlo, vhi = self.validation_mnist_range
        if not (0 <= lo < hi <= 60000 and 0 <= vlo < vhi <= 60000 and (hi <= vlo or vhi <= lo)):
            raise ValueError(
                "train_mnist_range and validation_mnist_range must be disjoint, non-empty ranges within "
                f"[0, 60000), got {self.train_mnist_range} and {self.validation_mnist_range}"
            )
        if self.placement_tries < 1:
            raise ValueError(f"placement_tries must be >= 1, got {self.placement_tries}")

    @property
    def tasks(self) -> list[list[int]]:
        """Digits learned in each task."""
        return parse_setting(self.setting, self.class_order)

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def max_offset(self) -> int:
        """Largest top-left coordinate of a digit (positions are uniform in ``[0, max_offset]``)."""
        return self.canvas - self.digit_size

    def seen_classes(self, task: int) -> list[int]:
        """Digits learned in tasks ``0..task``."""
        self.check_task(task)
        return [d for t in self.tasks[: task + 1] for d in t]

    def check_task(self, task: int) -> None:
        """Raise ``ValueError`` unless ``task`` is a valid task index."""
        n = self.num_tasks
        if isinstance(task, bool) or not isinstance(task, int) or not 0 <= task < n:
            raise ValueError(f"task must be an integer in [0, {n - 1}] for setting {self.setting!r}, got {task!r}")

    def config_names(self) -> list[str]:
        """All configs of a release built from this spec, in release order."""
        return [config_name(m, t) for m in MODES for t in range(self.num_tasks)] + ["joint"]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("extra")
        d["class_order"] = list(self.class_order)
        d["max_iou"] = list(self.max_iou)
        d["train_mnist_range"] = list(self.train_mnist_range)
        d["validation_mnist_range"] = list(self.validation_mnist_range)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CemnistSpec":
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown spec fields {sorted(unknown)}; known fields: {sorted(known)}")
        return cls(**d)

    def fingerprint(self) -> str:
        """Stable JSON text of the spec (sorted keys), used in manifests."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

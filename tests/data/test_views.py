"""Background shift and test views, in both modes, on hand-built label maps."""

from __future__ import annotations

import numpy as np
import pytest

from cemnist_data.scenario import apply_view, in_test_split, view_digits
from cemnist_data.spec import CemnistSpec

FULL = np.array([[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]], dtype=np.uint8)  # one row with every label


@pytest.mark.parametrize(
    ("task", "split", "kept"),
    [
        (0, "train", [1, 2]),
        (2, "train", [5, 6]),
        (2, "validation", [5, 6]),
        (0, "test", [1, 2]),
        (2, "test", [1, 2, 3, 4, 5, 6]),
        (4, "test", list(range(1, 11))),
        (None, "train", list(range(1, 11))),  # joint
        (None, "test", list(range(1, 11))),
    ],
)
def test_view_keeps_only_allowed_labels(task: int | None, split: str, kept: list[int]) -> None:
    spec = CemnistSpec()
    mask = apply_view(FULL, view_digits(spec, config_task=task, split=split))
    expect = np.where(np.isin(FULL, kept), FULL, 0)
    assert (mask == expect).all()
    assert int((mask > 0).sum()) == len(kept)


def test_ignore_label_is_kept() -> None:
    assert apply_view(np.array([255, 3], dtype=np.uint8), [2]).tolist() == [255, 3]


def test_custom_order_views() -> None:
    spec = CemnistSpec(class_order=(9, 8, 7, 6, 5, 4, 3, 2, 1, 0))
    assert sorted(view_digits(spec, config_task=0, split="train")) == [8, 9]
    assert sorted(view_digits(spec, config_task=1, split="test")) == [6, 7, 8, 9]


@pytest.mark.parametrize(
    ("classes", "seen", "expected"),
    [
        ([[0, 5, -1, -1]], [0, 1], [True]),
        ([[2, 5, 7, -1]], [0, 1], [False]),
        ([[2, 5, 7, 1]], [0, 1], [True]),
        ([[-1, -1, -1, -1]], [0], [False]),
    ],
)
def test_test_split_membership(classes: list[list[int]], seen: list[int], expected: list[bool]) -> None:
    assert in_test_split(np.array(classes), seen).tolist() == expected


def test_bad_split_in_view() -> None:
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        view_digits(CemnistSpec(), config_task=0, split="dev")

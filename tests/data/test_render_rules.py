"""The label rules on tiny hand-built layouts: overlap resolution, ties, clipping, background."""

from __future__ import annotations

import numpy as np
import pytest

from cemnist_data.render import render_layout

C = 60  # canvas


def digit(value: int, rows: slice = slice(0, 28), cols: slice = slice(0, 28)) -> np.ndarray:
    d = np.zeros((28, 28), dtype=np.uint8)
    d[rows, cols] = value
    return d


def layout(*placed: tuple[int, int, int, int]) -> tuple[np.ndarray, ...]:
    """placed = (class, digit_index, top, left) per slot; returns arrays for render_layout."""
    cls = np.full((1, 4), -1)
    idx = np.full((1, 4), -1)
    top = np.full((1, 4), -1)
    left = np.full((1, 4), -1)
    for j, (c, i, t, l) in enumerate(placed):
        cls[0, j], idx[0, j], top[0, j], left[0, j] = c, i, t, l
    return cls, idx, top, left


def render(digits: list[np.ndarray], *placed: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cls, idx, top, left = layout(*placed)
    img, full, present = render_layout(np.stack(digits), cls, idx, top, left, canvas=C)
    return img[0], full[0], present[0]


def test_single_digit_background_and_label() -> None:
    d = digit(0)
    d[10:15, 3:9] = 200
    img, full, present = render([d], (7, 0, 5, 20))
    assert img[15:20, 23:29].min() == 200 and img.sum() == 200 * 30
    assert (full[15:20, 23:29] == 8).all()  # digit 7 -> label 8
    assert (full[img == 0] == 0).all()  # background wherever every intensity is 0
    assert present.tolist() == [i == 8 for i in range(11)]


@pytest.mark.parametrize(
    ("a", "b", "expected_label"),
    [
        ((3, 100), (5, 150), 6),  # digit 5 brighter -> label 6
        ((3, 150), (5, 100), 4),  # digit 3 brighter -> label 4
        ((3, 120), (5, 120), 4),  # tie -> lower digit (3)
        ((5, 120), (3, 120), 4),  # tie, placement order reversed: still the lower digit
        ((8, 255), (2, 255), 3),  # tie at the maximum -> lower digit (2)
    ],
)
def test_overlap_resolution_and_ties(a: tuple[int, int], b: tuple[int, int], expected_label: int) -> None:
    (ca, va), (cb, vb) = a, b
    img, full, _ = render([digit(va), digit(vb)], (ca, 0, 0, 0), (cb, 1, 0, 14))
    # overlap columns 14..27: both digits present
    assert (full[0:28, 14:28] == expected_label).all()
    assert (full[0:28, 0:14] == ca + 1).all() and (full[0:28, 28:42] == cb + 1).all()
    assert (img[0:28, 14:28] == min(255, va + vb)).all()


def test_image_clipped_to_255() -> None:
    img, full, _ = render([digit(200), digit(180)], (1, 0, 0, 0), (4, 1, 10, 10))
    assert img[10:28, 10:28].max() == 255 and img.dtype == np.uint8
    assert (full[10:28, 10:28] == 2).all()  # 200 > 180 -> digit 1


def test_same_class_intensities_add_before_comparison() -> None:
    # two 3s of 100 each (class intensity 200) beat a single 6 of 150 where all three overlap
    img, full, _ = render([digit(100), digit(100), digit(150)], (3, 0, 0, 0), (3, 1, 0, 14), (6, 2, 0, 7))
    assert (full[0:28, 14:28] == 4).all()  # 3s overlap (200) under the 6 (150) in cols 14..27 -> 3 wins
    assert (full[0:28, 7:14] == 7).all()  # single 3 (100) vs 6 (150) -> 6 wins
    assert (img[0:28, 14:28] == 255).all()  # 100 + 100 + 150 clipped


def test_same_class_sum_clipped_before_comparison() -> None:
    # two 2s of 200 (sum 400 -> class intensity 255) against a 7 of 255: tie at 255 -> lower digit 2
    _, full, _ = render([digit(200), digit(200), digit(255)], (7, 2, 0, 7), (2, 0, 0, 0), (2, 1, 0, 14))
    assert (full[0:28, 14:28] == 3).all()
    # against a 1 of 255 the tie goes to the 1
    _, full, _ = render([digit(200), digit(200), digit(255)], (1, 2, 0, 7), (2, 0, 0, 0), (2, 1, 0, 14))
    assert (full[0:28, 14:28] == 2).all()


def test_zero_intensity_is_background_even_inside_a_box() -> None:
    d = digit(0, rows=slice(0, 0))
    d[0, 0] = 9
    img, full, present = render([d], (4, 0, 30, 30))
    assert full[30, 30] == 5 and full.sum() == 5  # only the one lit pixel
    assert present[5] and not present[0]


def test_hidden_digit_is_not_present() -> None:
    # a faint 1 fully covered by a brighter 0 wins no pixel
    img, full, present = render([digit(50), digit(250)], (1, 0, 0, 0), (0, 1, 0, 0))
    assert (full[:28, :28] == 1).all()
    assert present[1] and not present[2]


@pytest.mark.parametrize("n_images", [0, 1, 129, 300])
def test_blocks_do_not_change_the_result(n_images: int) -> None:
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8) * (rng.random((20, 28, 28)) < 0.3)
    k = rng.integers(2, 5, n_images)
    cls = np.where(np.arange(4) < k[:, None], rng.integers(0, 10, (n_images, 4)), -1)
    idx = np.where(cls >= 0, rng.integers(0, 20, (n_images, 4)), -1)
    top = np.where(cls >= 0, rng.integers(0, 33, (n_images, 4)), -1)
    left = np.where(cls >= 0, rng.integers(0, 33, (n_images, 4)), -1)
    img, full, present = render_layout(digits, cls, idx, top, left)
    assert img.shape == (n_images, C, C)
    for i in range(min(n_images, 5)):
        one = render_layout(digits, cls[i : i + 1], idx[i : i + 1], top[i : i + 1], left[i : i + 1])
        assert (one[0][0] == img[i]).all() and (one[1][0] == full[i]).all()
        # brute-force reference for image i
        per_class = np.zeros((10, C, C), dtype=np.int64)
        raw = np.zeros((C, C), dtype=np.int64)
        for j in range(4):
            if cls[i, j] < 0:
                continue
            sl = (slice(top[i, j], top[i, j] + 28), slice(left[i, j], left[i, j] + 28))
            per_class[cls[i, j]][sl] += digits[idx[i, j]]
            raw[sl] += digits[idx[i, j]]
        clipped = np.minimum(per_class, 255)
        expect = np.where(clipped.max(axis=0) > 0, clipped.argmax(axis=0) + 1, 0)  # argmax: first = lowest digit
        assert (full[i] == expect).all()
        assert (img[i] == np.minimum(raw, 255)).all()

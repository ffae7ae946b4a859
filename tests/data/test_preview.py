"""The release card's preview picture (cemnist_data.preview): the bytes every release folder holds."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cemnist_data.preview import PREVIEW_ALPHA, PREVIEW_BLEND, PREVIEW_PATH, preview_png
from cemnist_data.viz.overlay import overlay, overlay_grid

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs/img/release_preview.png"  # the repository copy of the release's images/preview.png


def test_a_fresh_release_holds_the_committed_preview_byte_for_byte(release) -> None:
    built = (release.path / PREVIEW_PATH).read_bytes()
    assert built == COMMITTED.read_bytes()


def _decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        assert im.mode == "RGB"
        return np.asarray(im)


def test_preview_cells_are_the_stroke_overlay_doubled_with_white_gaps() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 3, 6, 5), dtype=np.uint8)
    masks = rng.choice(np.array([0, 1, 4, 10], np.uint8), size=(2, 3, 6, 5))
    rows = [(images[0], masks[0]), (images[1][:2], masks[1][:2])]
    rgb = _decode(preview_png(rows))
    assert rgb.shape == (2 * (12 + 4) + 4, 3 * (10 + 4) + 4, 3)
    assert np.array_equal(rgb, overlay_grid(rows, scale=2, gap=4, alpha=PREVIEW_ALPHA, blend=PREVIEW_BLEND))
    cell = overlay(images[1][1], masks[1][1], alpha=0.35, blend="stroke").repeat(2, axis=0).repeat(2, axis=1)
    assert np.array_equal(rgb[20:32, 18:28], cell)
    assert (rgb[20:32, 32:] == 255).all() and (rgb[:4] == 255).all()


def test_preview_refuses_no_rows_and_mismatched_rows() -> None:
    img = np.zeros((2, 6, 6), np.uint8)
    with pytest.raises(ValueError, match="at least one row"):
        preview_png([])
    with pytest.raises(ValueError, match=r"row 0: images and masks must have the same shape"):
        preview_png([(img, img[:1])])

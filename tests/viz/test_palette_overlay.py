import numpy as np
import pytest

from cemnist_data.viz.overlay import ignore_pattern, label_image, overlay, overlay_grid, tile
from cemnist_data.viz.palette import (DIGIT_COLORS_HEX, DIGIT_COLORS_RGB, IGNORE_STRIPE_RGB, hex_to_rgb, label_color,
                                      label_name)


def test_palette_fixed_and_distinct():
    assert len(DIGIT_COLORS_HEX) == 10
    rgb = {tuple(c) for c in DIGIT_COLORS_RGB.tolist()}
    assert len(rgb) == 10
    assert not rgb & {tuple(c) for c in IGNORE_STRIPE_RGB}
    # Okabe–Ito orange for digit 0, Tol wine for digit 9 (pinned: the palette must never drift).
    assert label_color(1) == (230, 159, 0)
    assert label_color(10) == (136, 34, 85)
    assert label_color(0) is None
    assert label_name(0) == "bg" and label_name(4) == "3" and label_name(255) == "ignore"
    with pytest.raises(ValueError, match="outside"):
        label_color(11)
    assert hex_to_rgb("#0072B2") == (0, 114, 178)


def _hand_built():
    img = np.zeros((8, 8), np.uint8)
    img[:] = 100
    img[0, 0] = 37
    msk = np.zeros((8, 8), np.uint8)
    msk[1, 1] = 1   # digit 0
    msk[2, 3] = 5   # digit 4
    msk[3, 3] = 10  # digit 9
    msk[6:8, 6:8] = 255
    return img, msk


def test_known_pixels_get_known_colours_opaque():
    img, msk = _hand_built()
    out = overlay(img, msk, alpha=1.0)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert tuple(out[1, 1]) == (230, 159, 0)
    assert tuple(out[2, 3]) == (0, 114, 178)
    assert tuple(out[3, 3]) == (136, 34, 85)
    # background keeps the grey image value
    assert tuple(out[0, 0]) == (37, 37, 37)
    assert tuple(out[4, 4]) == (100, 100, 100)


def test_known_pixels_blended():
    img, msk = _hand_built()
    out = overlay(img, msk, alpha=0.5)
    # (g * 128 + c * 128 + 128) >> 8
    exp = tuple((100 * 128 + c * 128 + 128) >> 8 for c in (230, 159, 0))
    assert tuple(out[1, 1]) == exp == (165, 130, 50)
    assert tuple(out[0, 0]) == (37, 37, 37)


def test_stroke_blend_follows_the_stroke_intensity():
    """The release preview's rule: the colour's share is ``alpha`` on black, 1 on white, linear between."""
    img, msk = _hand_built()
    img[5, 5], img[5, 6] = 255, 0
    msk[5, 5] = msk[5, 6] = 1  # digit 0, (230, 159, 0)
    out = overlay(img, msk, alpha=0.35, blend="stroke")
    a = 0.35 + 0.65 * 100 / 255
    assert tuple(out[1, 1]) == tuple(round(c * a + 100 * (1 - a)) for c in (230, 159, 0)) == (179, 136, 40)
    assert tuple(out[5, 5]) == (230, 159, 0)  # white stroke: the label colour itself
    assert tuple(out[5, 6]) == (80, 56, 0)  # black: 0.35 of the colour
    assert tuple(out[0, 0]) == (37, 37, 37) and tuple(out[4, 4]) == (100, 100, 100)  # background stays grey
    assert tuple(out[7, 7]) in IGNORE_STRIPE_RGB  # ignore: stripes under both rules
    assert not np.array_equal(out, overlay(img, msk, alpha=0.35))
    with pytest.raises(ValueError, match="blend must be one of constant, stroke, got 'soft'"):
        overlay(img, msk, blend="soft")


def test_overlay_grid_lays_cells_out_with_gaps_and_margin():
    img, msk = _hand_built()
    rows = [(np.stack([img, img, img]), np.stack([msk, msk, msk])), (img, msk)]  # the second row is shorter
    grid = overlay_grid(rows, scale=2, gap=3, alpha=1.0)
    cell = 8 * 2
    assert grid.shape == (2 * (cell + 3) + 3, 3 * (cell + 3) + 3, 3) and grid.dtype == np.uint8
    x0, y1 = 3 + 2 * (cell + 3), 3 + cell + 3  # third cell of row 0; first cell of row 1
    want = overlay(img, msk, alpha=1.0).repeat(2, axis=0).repeat(2, axis=1)
    assert np.array_equal(grid[3:3 + cell, x0:x0 + cell], want)
    assert np.array_equal(grid[y1:y1 + cell, 3:3 + cell], want)
    assert (grid[y1:y1 + cell, 3 + cell:] == 255).all()  # the short row ends in background cells
    assert (grid[:3] == 255).all() and (grid[:, :3] == 255).all() and (grid[3 + cell:y1] == 255).all()
    assert (overlay_grid([(img, msk)], gap=1, background=0)[0] == 0).all()
    with pytest.raises(ValueError, match="at least one row"):
        overlay_grid([])
    with pytest.raises(ValueError, match=r"row 1: images and masks must have the same shape"):
        overlay_grid([(img, msk), (img, msk[:4])])
    with pytest.raises(ValueError, match=r"row 1: images of 4x8 pixels, row 0 has 8x8"):
        overlay_grid([(img, msk), (img[:4], msk[:4])])
    with pytest.raises(ValueError, match="scale must be positive"):
        overlay_grid([(img, msk)], scale=0)


def test_ignore_has_distinct_stripes():
    img, msk = _hand_built()
    out = overlay(img, msk, alpha=0.3)
    pat = ignore_pattern((8, 8))
    for r, c in [(6, 6), (6, 7), (7, 6), (7, 7)]:
        want = IGNORE_STRIPE_RGB[0] if pat[r, c] else IGNORE_STRIPE_RGB[1]
        assert tuple(out[r, c]) == want
    colours = {tuple(out[r, c]) for r in (6, 7) for c in (6, 7)}
    assert colours == set(IGNORE_STRIPE_RGB)  # (r + c) // 2 is 6 at (6,6) and 7 at (7,7): both stripes
    hidden = overlay(img, msk, alpha=0.3, show_ignore=False)
    assert tuple(hidden[7, 7]) == (100, 100, 100)


def test_batch_and_torch_input():
    torch = pytest.importorskip("torch")
    img, msk = _hand_built()
    batch = overlay(torch.from_numpy(np.stack([img, img])), torch.from_numpy(np.stack([msk, np.zeros_like(msk)])),
                    alpha=1.0)
    assert batch.shape == (2, 8, 8, 3)
    assert tuple(batch[0, 1, 1]) == (230, 159, 0)
    assert tuple(batch[1, 1, 1]) == (100, 100, 100)


def test_label_image():
    _, msk = _hand_built()
    out = label_image(msk, background=(1, 2, 3))
    assert tuple(out[0, 0]) == (1, 2, 3)
    assert tuple(out[2, 3]) == (0, 114, 178)


@pytest.mark.parametrize("bad,match", [(11, r"\[11\]"), (254, r"\[254\]"), (100, r"\[100\]")])
def test_bad_mask_values(bad, match):
    img, msk = _hand_built()
    msk[4, 4] = bad
    with pytest.raises(ValueError, match=match):
        overlay(img, msk)


def test_bad_shapes_and_options():
    img, msk = _hand_built()
    with pytest.raises(ValueError, match="same shape"):
        overlay(img, msk[:4])
    with pytest.raises(ValueError, match="N <= 0"):
        overlay(np.zeros((0, 8, 8), np.uint8), np.zeros((0, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        overlay(img, msk, alpha=1.5)
    with pytest.raises(ValueError, match="0..255"):
        overlay(img.astype(np.int32) * 10, msk)
    with pytest.raises(ValueError, match="integers"):
        overlay(img.astype(np.float32), msk)


def test_tile():
    panels = np.zeros((5, 4, 6, 3), np.uint8)
    panels[4] = 9
    grid = tile(panels, ncols=2, pad=1)
    assert grid.shape == (3 * 5 - 1, 2 * 7 - 1, 3)
    assert (grid[10:14, 0:6] == 9).all()
    assert (grid[4, :] == 255).all()  # padding row
    with pytest.raises(ValueError, match="ncols"):
        tile(panels, ncols=0)

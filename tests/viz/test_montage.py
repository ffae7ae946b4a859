
import numpy as np
import pytest

from png_checks import assert_nontrivial_png, has_colour

from cemnist_data.viz.montage import digits_present, preview_strip, show, show_compare
from cemnist_data.viz.palette import label_color


def _samples(n=6):
    img = np.zeros((n, 60, 60), np.uint8)
    msk = np.zeros((n, 60, 60), np.uint8)
    for i in range(n):
        img[i, 10:30, 10:30] = 255
        msk[i, 10:30, 10:30] = (i % 10) + 1
        img[i, 35:50, 35:50] = 200
        msk[i, 35:50, 35:50] = 8  # digit 7
    return img, msk


def test_show_draws_palette_colours(tmp_path):
    img, msk = _samples()
    out = show(img, msk, out=tmp_path / "m.png", title="test montage", ncols=3, alpha=1.0)
    rgb = assert_nontrivial_png(out)
    for d in range(6):
        assert has_colour(rgb, label_color(d + 1)), d
    # digit 9 is in no mask: its colour appears only in the small legend patch
    count = lambda c: int((rgb == np.array(c, np.uint8)).all(axis=-1).sum())  # noqa: E731
    assert 0 < count(label_color(10)) < count(label_color(8)) / 5
    assert rgb.shape[1] > rgb.shape[0]  # 2 rows x 3 cols + legend: wider than tall


def test_show_validates(tmp_path):
    img, msk = _samples()
    msk[0, 0, 0] = 12
    with pytest.raises(ValueError, match="outside the CEMNIST label space"):
        show(img, msk, out=tmp_path / "x.png")
    with pytest.raises(ValueError, match="captions"):
        show(img, np.zeros_like(msk), out=tmp_path / "x.png", captions=["a"])
    assert not (tmp_path / "x.png").exists()


def test_compare_and_preview(tmp_path):
    img, full = _samples(3)
    train = np.where(full == 8, 0, full).astype(np.uint8)
    out = show_compare(img, train, full, out=tmp_path / "c.png", title="train view vs full", alpha=1.0)
    rgb = assert_nontrivial_png(out)
    assert has_colour(rgb, label_color(8))
    strip = preview_strip([(img[:2], full[:2]), (img[2:], full[2:])], out=tmp_path / "s.png",
                          row_labels=["task 1", "task 2"], title="strip", alpha=1.0)
    assert_nontrivial_png(strip)
    # by default the strip is the release preview's grid: the white strokes take their exact label colour
    strip = preview_strip([(img[:2], full[:2]), (img[2:], full[2:])], out=tmp_path / "d.png",
                          row_labels=["task 1", "task 2"])
    rgb = assert_nontrivial_png(strip)
    for d in range(3):
        assert has_colour(rgb, label_color(d + 1), at_least=1000), d  # the legend patches alone: ~240 px
    with pytest.raises(ValueError, match="row_labels"):
        preview_strip([(img, full)], out=tmp_path / "y.png", row_labels=["a", "b"])
    with pytest.raises(ValueError, match="at least one row"):
        preview_strip([], out=tmp_path / "y.png")
    assert digits_present(full[0]) == [0, 7]

import hashlib

import numpy as np
import pytest
from PIL import Image

from cemnist_data.viz.gif import select_frames, write_gif


def _frames(n, h=40, w=50, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    return [np.roll(base, i, axis=1) for i in range(n)]


def test_select_frames_keeps_boundaries_and_last():
    keep = [9, 19, 29, 39, 49]
    idx = select_frames(100, max_frames=12, keep=keep)
    assert len(idx) == 12
    assert set(keep) <= set(idx) and 99 in idx
    assert idx == sorted(set(idx))
    assert select_frames(5, max_frames=10) == [0, 1, 2, 3, 4]
    # even spread: the gaps between kept frames are bounded
    idx = select_frames(1000, max_frames=50)
    assert len(idx) == 50 and max(np.diff(idx)) <= 2 * 1000 / 50


def test_select_frames_errors():
    with pytest.raises(ValueError, match="smaller than the 4 frames"):
        select_frames(100, max_frames=3, keep=[10, 20, 30])
    with pytest.raises(ValueError, match="outside"):
        select_frames(10, keep=[10])
    with pytest.raises(ValueError, match="n=0"):
        select_frames(0)


def test_gif_deterministic_and_frame_count(tmp_path):
    frames = _frames(30)
    a = write_gif(frames, tmp_path / "a.gif", max_frames=10, keep=[5, 15])
    b = write_gif(frames, tmp_path / "b.gif", max_frames=10, keep=[5, 15])
    da, db = (tmp_path / "a.gif").read_bytes(), (tmp_path / "b.gif").read_bytes()
    assert hashlib.sha256(da).hexdigest() == hashlib.sha256(db).hexdigest()
    assert a.n_frames == 10 and {5, 15, 29} <= set(a.frame_indices)
    with Image.open(tmp_path / "a.gif") as im:
        assert im.format == "GIF" and im.n_frames == 10 and im.size == (50, 40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "b.gif"]  # no temp files left


def test_gif_size_bounds(tmp_path):
    # Noise frames compress badly: 20 frames of 600x600 noise are ~7 MB as a GIF.
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, size=(600, 600, 3), dtype=np.uint8) for _ in range(20)]
    info = write_gif(frames, tmp_path / "n.gif", max_bytes=1_000_000, max_side=600)
    assert info.n_bytes == (tmp_path / "n.gif").stat().st_size <= 1_000_000
    assert max(info.width, info.height) < 600
    with Image.open(tmp_path / "n.gif") as im:
        assert im.n_frames == 20
    small = write_gif(frames[:2], tmp_path / "s.gif", max_side=100)
    assert max(small.width, small.height) == 100
    with pytest.raises(ValueError, match="max_bytes"):
        write_gif(frames[:3], tmp_path / "x.gif", max_bytes=100)
    assert not (tmp_path / "x.gif").exists()


def test_gif_bad_input(tmp_path):
    with pytest.raises(ValueError, match="at least one frame"):
        write_gif([], tmp_path / "e.gif")
    with pytest.raises(ValueError, match="RGB uint8"):
        write_gif([np.zeros((4, 4), np.uint8)], tmp_path / "e.gif")
    with pytest.raises(ValueError, match="same shape"):
        write_gif([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)], tmp_path / "e.gif")

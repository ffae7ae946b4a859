"""Checks of written pictures shared by the data pictures' tests (tests/viz) and the report's
(tests/baselines/report); ``tests/`` is on ``sys.path`` through tests/conftest.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def assert_nontrivial_png(path: Path, *, min_size: int = 200, min_colours: int = 10) -> np.ndarray:
    """The file is a PNG of at least ``min_size`` px a side with many colours; returns its RGB pixels."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        rgb = np.asarray(im.convert("RGB"))
    assert min(rgb.shape[:2]) >= min_size, rgb.shape
    n = len(np.unique(rgb.reshape(-1, 3), axis=0))
    assert n >= min_colours, f"{path} has only {n} colours"
    return rgb


def has_colour(rgb: np.ndarray, colour: tuple[int, int, int], *, at_least: int = 20) -> bool:
    """Whether at least ``at_least`` pixels of ``rgb`` have exactly ``colour``."""
    return int((rgb == np.array(colour, np.uint8)).all(axis=-1).sum()) >= at_least

"""The card's preview picture, drawn with numpy and Pillow only (no matplotlib), inside every release folder.

One row per task: the first train images of the task (mode overlap), each drawn twice as large, with
the pixels of the current task's digits in their label colour (:mod:`cemnist_data.labels`) and every
other digit left white, as the mask labels it background.

One preview renderer: the cells are coloured and laid out by
:func:`cemnist_data.viz.overlay.overlay_grid` with the ``stroke`` blend (:data:`PREVIEW_ALPHA`), the rule
:func:`~cemnist_data.viz.overlay.overlay` documents; the README's per-task strip
(:func:`cemnist_data.viz.montage.preview_strip`, ``cemnist preview``) draws the same grid and adds a title,
row labels and a legend with matplotlib. The release folder holds these bytes (``images/preview.png``; its
repository copy is docs/img/release_preview.png, which tests/data/test_preview.py compares to a fresh build
byte for byte).
"""

from __future__ import annotations

import io

import numpy as np

__all__ = ["PREVIEW_ALPHA", "PREVIEW_BLEND", "PREVIEW_PATH", "preview_png"]

PREVIEW_PATH = "images/preview.png"
"""Where the preview lies inside a release folder (the card links to it)."""
PREVIEW_BLEND = "stroke"
"""The preview's colouring rule (:func:`cemnist_data.viz.overlay.overlay`): the label colour's share grows with
the stroke's intensity, so the stroke stays visible."""
PREVIEW_ALPHA = 0.35
"""The label colour's share on a black pixel under :data:`PREVIEW_BLEND` (1 on a white one)."""


def preview_png(rows: list[tuple[np.ndarray, np.ndarray]], *, scale: int = 2, gap: int = 4) -> bytes:
    """PNG bytes of a grid: one row per ``(images, masks)`` pair (uint8 ``[k, H, W]`` each), each image
    ``scale`` times as large, ``gap`` white pixels between and around the cells.

    Digit pixels take their label's colour, blended with the image intensity (:data:`PREVIEW_BLEND`); other
    pixels show the grey image. Raises ValueError for no rows, or a row whose images and masks differ in shape.
    """
    from PIL import Image

    from .viz.overlay import overlay_grid

    if not rows:
        raise ValueError("preview_png needs at least one row of (images, masks)")
    canvas = overlay_grid(rows, scale=scale, gap=gap, alpha=PREVIEW_ALPHA, blend=PREVIEW_BLEND)
    buf = io.BytesIO()
    Image.fromarray(canvas, mode="RGB").save(buf, format="PNG", optimize=True)
    return buf.getvalue()

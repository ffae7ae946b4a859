"""The card's preview picture, drawn with numpy and Pillow only (no matplotlib), inside every release folder.

One row per task: the first train images of the task (mode overlap), each drawn twice as large, with
the pixels of the current task's digits in their label colour (:mod:`cemnist_data.labels`) and every
other digit left white, as the mask labels it background.
"""

from __future__ import annotations

import io

import numpy as np

from .labels import MASK_PALETTE_RGB

__all__ = ["PREVIEW_PATH", "preview_png"]

PREVIEW_PATH = "images/preview.png"
"""Where the preview lies inside a release folder (the card links to it)."""


def preview_png(rows: list[tuple[np.ndarray, np.ndarray]], *, scale: int = 2, gap: int = 4) -> bytes:
    """PNG bytes of a grid: one row per ``(images, masks)`` pair (uint8 ``[k, H, W]`` each).

    Pixels with a mask label > 0 take that label's colour (blended with the image intensity so the
    stroke stays visible); other pixels show the grey image.
    """
    from PIL import Image

    if not rows:
        raise ValueError("preview_png needs at least one row of (images, masks)")
    k = max(len(r[0]) for r in rows)
    h, w = rows[0][0].shape[1:]
    lut = np.zeros((256, 3), dtype=np.float32)
    lut[: len(MASK_PALETTE_RGB)] = np.asarray(MASK_PALETTE_RGB, dtype=np.float32)
    cell_h, cell_w = h * scale, w * scale
    canvas = np.full((len(rows) * (cell_h + gap) + gap, k * (cell_w + gap) + gap, 3), 255, dtype=np.uint8)
    for r, (images, masks) in enumerate(rows):
        if images.shape != masks.shape:
            raise ValueError(f"row {r}: images {images.shape} and masks {masks.shape} differ in shape")
        for c in range(len(images)):
            grey = images[c].astype(np.float32)[..., None].repeat(3, axis=2)
            labelled = masks[c] > 0
            alpha = (0.35 + 0.65 * images[c].astype(np.float32) / 255.0)[..., None]
            colour = lut[masks[c]] * alpha + grey * (1 - alpha)
            rgb = np.where(labelled[..., None], colour, grey).round().astype(np.uint8)
            big = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
            y, x = gap + r * (cell_h + gap), gap + c * (cell_w + gap)
            canvas[y : y + cell_h, x : x + cell_w] = big
    buf = io.BytesIO()
    Image.fromarray(canvas, mode="RGB").save(buf, format="PNG", optimize=True)
    return buf.getvalue()

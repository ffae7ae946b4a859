#!/usr/bin/env python
"""The README's mask pictures: the same masks as the former grey-scale PNGs and as palette PNGs.

    python builder_scripts/make_mask_pictures.py            # writes docs/img/masks_grey.png, docs/img/masks_palette.png

Both are decoded through `datasets` (`load_dataset(...)["full_mask"]`, a PIL image of mode P): the
palette picture is that image as any viewer shows it; the grey one holds the same label ids as 8-bit
grey values, as the masks were stored before.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from cemnist_data import load_dataset
from cemnist_data.fileio import atomic_path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    # a fresh cache: a cache filled by an older cemnist holds the same labels as grey-scale PNGs
    with tempfile.TemporaryDirectory() as cache:
        rows = load_dataset("cemnist", "joint", split="test[:4]", cache_dir=cache)
        return _draw(rows)


def _draw(rows) -> int:  # noqa: ANN001
    masks = [row["full_mask"] for row in rows]
    assert all(m.mode == "P" for m in masks)
    gap, scale = 4, 3
    size = 60 * scale
    for name, mode in (("masks_palette.png", "palette"), ("masks_grey.png", "grey")):
        canvas = Image.new("RGB", (4 * size + 5 * gap, size + 2 * gap), (255, 255, 255))
        for i, m in enumerate(masks):
            tile = m.convert("RGB") if mode == "palette" else Image.fromarray(np.asarray(m), mode="L").convert("RGB")
            canvas.paste(tile.resize((size, size), Image.NEAREST), (gap + i * (size + gap), gap))
        with atomic_path(REPO / "docs" / "img" / name) as tmp:
            canvas.save(tmp, format="PNG", optimize=True)
        print(f"wrote docs/img/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

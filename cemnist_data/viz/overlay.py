"""Image + mask overlays as RGB uint8 arrays (vectorised numpy, no matplotlib needed).

The one home of how an (image, mask) cell is coloured (:func:`overlay`, its two blend rules) and laid out in a
grid (:func:`tile`, :func:`overlay_grid`). Every picture of samples uses them: the release card's preview
(:mod:`cemnist_data.preview`), the montages and the per-task strip (:mod:`.montage`), the prediction GIFs of
``cemnist_baselines.report``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..labels import IGNORE
from .palette import IGNORE_STRIPE_RGB, color_lut


def as_uint8_array(x: Any, *, name: str) -> np.ndarray:
    """Convert numpy arrays / CPU torch tensors / nested lists to uint8 numpy, checking the range."""
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integers (uint8), got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(f"{name} values must lie in 0..255, got range [{arr.min()}, {arr.max()}]")
    return arr.astype(np.uint8)


def check_mask_values(masks: np.ndarray, *, name: str = "mask") -> None:
    """Raise ValueError when ``masks`` holds a value outside {0..10, 255}."""
    _, valid = color_lut()
    bad = ~valid[masks]
    if bad.any():
        values = np.unique(masks[bad])
        raise ValueError(
            f"{name} holds {int(bad.sum())} pixel(s) with values {values[:10].tolist()} outside the "
            "CEMNIST label space {0..10, 255} (0 = background, d+1 = digit d, 255 = ignore)"
        )


def validate_pair(images: Any, masks: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate images and masks ([H, W] or [N, H, W], same shape, uint8 labels in range)."""
    img = as_uint8_array(images, name="images")
    msk = as_uint8_array(masks, name="masks")
    if img.ndim not in (2, 3):
        raise ValueError(f"images must have shape [H, W] or [N, H, W], got {img.shape}")
    if img.shape != msk.shape:
        raise ValueError(f"images and masks must have the same shape, got {img.shape} and {msk.shape}")
    if img.ndim == 3 and img.shape[0] <= 0:
        raise ValueError("need at least one image (N <= 0)")
    if img.shape[-1] <= 0 or img.shape[-2] <= 0:
        raise ValueError(f"images must be non-empty, got shape {img.shape}")
    check_mask_values(msk, name="masks")
    return img, msk


def ignore_pattern(shape: tuple[int, int]) -> np.ndarray:
    """Boolean [H, W] diagonal-stripe pattern (True = first stripe colour), 2-pixel stripes."""
    r = np.arange(shape[0])[:, None]
    c = np.arange(shape[1])[None, :]
    return ((r + c) // 2) % 2 == 0


BLENDS = ("constant", "stroke")
"""The rules :func:`overlay` colours a digit pixel by (see there)."""


def overlay(images: Any, masks: Any, *, alpha: float = 0.65, blend: str = "constant",
            show_ignore: bool = True) -> np.ndarray:
    """Overlay masks on grey images; returns RGB uint8 ``[..., H, W, 3]``.

    Background pixels keep the grey image value. A digit pixel of image value ``g`` with label colour ``c``:

    - ``blend="constant"`` (montages, prediction GIFs): ``(g * (256 - A) + c * A + 128) >> 8`` per channel with
      ``A = round(alpha * 256)``, so ``alpha=1`` gives exactly ``c``;
    - ``blend="stroke"`` (the release card's preview, :mod:`cemnist_data.preview`): the colour's share grows
      with the stroke's intensity, ``a = alpha + (1 - alpha) * g / 255`` (``alpha`` on black, 1 on white), and
      the pixel is ``round(c * a + g * (1 - a))`` computed in float32, rounding half to even.

    Ignore pixels (255) are drawn opaque in a stripe pattern of :data:`IGNORE_STRIPE_RGB` when
    ``show_ignore`` (else they stay grey).
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {', '.join(BLENDS)}, got {blend!r}")
    img, msk = validate_pair(images, masks)
    lut, _ = color_lut()
    if blend == "constant":
        a = int(round(float(alpha) * 256))
        grey = img.astype(np.uint16)[..., None]
        col = lut[msk].astype(np.uint16)
        blended = ((grey * (256 - a) + col * a + 128) >> 8).astype(np.uint8)
    else:
        # The operations and their order are those the release preview's bytes were made with (float32).
        g = img.astype(np.float32)
        share = (float(alpha) + (1.0 - float(alpha)) * g / 255.0)[..., None]
        blended = (lut[msk].astype(np.float32) * share + g[..., None] * (1 - share)).round().astype(np.uint8)
    out = np.repeat(img[..., None], 3, axis=-1)
    digit = (msk >= 1) & (msk <= 10)
    out[digit] = blended[digit]
    if show_ignore:
        ign = msk == IGNORE
        if ign.any():
            stripes = ignore_pattern(img.shape[-2:])
            pat = np.where(stripes[..., None], np.array(IGNORE_STRIPE_RGB[0], np.uint8),
                           np.array(IGNORE_STRIPE_RGB[1], np.uint8))
            pat = np.broadcast_to(pat, out.shape)
            out[ign] = pat[ign]
    return out


def label_image(masks: Any, *, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Colour a mask alone (no image): labels in palette colours, background in ``background``."""
    msk = as_uint8_array(masks, name="masks")
    check_mask_values(msk, name="masks")
    lut, _ = color_lut()
    lut = lut.copy()
    lut[0] = background
    out = lut[msk]
    ign = msk == IGNORE
    if ign.any():
        stripes = np.broadcast_to(ignore_pattern(msk.shape[-2:]), msk.shape)
        out[ign & stripes] = IGNORE_STRIPE_RGB[0]
        out[ign & ~stripes] = IGNORE_STRIPE_RGB[1]
    return out


def tile(panels: np.ndarray, *, ncols: int, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile RGB panels ``[N, H, W, 3]`` into one ``[rows*(H+pad)-pad, ...]`` grid image."""
    panels = np.asarray(panels)
    if panels.ndim != 4 or panels.shape[-1] != 3:
        raise ValueError(f"panels must have shape [N, H, W, 3], got {panels.shape}")
    n, h, w, _ = panels.shape
    if n <= 0:
        raise ValueError("need at least one panel (N <= 0)")
    if ncols <= 0:
        raise ValueError(f"ncols must be positive, got {ncols}")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    full = np.full((nrows * ncols, h + pad, w + pad, 3), pad_value, dtype=panels.dtype)
    full[:n, :h, :w] = panels
    grid = full.reshape(nrows, ncols, h + pad, w + pad, 3).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(nrows * (h + pad), ncols * (w + pad), 3)
    return grid[: grid.shape[0] - pad, : grid.shape[1] - pad]


def overlay_grid(
    rows: Sequence[tuple[Any, Any]],
    *,
    scale: int = 1,
    gap: int = 4,
    alpha: float = 0.65,
    blend: str = "constant",
    show_ignore: bool = True,
    background: int = 255,
) -> np.ndarray:
    """One grid picture (RGB uint8) of ``rows``: one grid row per ``(images, masks)`` pair (``[k, H, W]`` or
    ``[H, W]``, the same ``H, W`` in every row), each cell the :func:`overlay` of a sample (``alpha``, ``blend``,
    ``show_ignore``) enlarged ``scale`` times (nearest neighbour). ``gap`` pixels of grey level ``background``
    lie between the cells and around the grid; a row shorter than the longest ends in background cells."""
    if len(rows) == 0:
        raise ValueError("overlay_grid needs at least one row of (images, masks)")
    if scale <= 0 or gap < 0:
        raise ValueError(f"scale must be positive and gap non-negative, got scale={scale}, gap={gap}")
    if not 0 <= background <= 255:
        raise ValueError(f"background must be a grey level in 0..255, got {background}")
    cells = []
    for r, (images, masks) in enumerate(rows):
        try:
            img, msk = validate_pair(images, masks)
        except ValueError as exc:
            raise ValueError(f"row {r}: {exc}") from exc
        rgb = overlay(img if img.ndim == 3 else img[None], msk if msk.ndim == 3 else msk[None], alpha=alpha,
                      blend=blend, show_ignore=show_ignore)
        if cells and rgb.shape[1:3] != cells[0].shape[1:3]:
            raise ValueError(f"row {r}: images of {rgb.shape[1]}x{rgb.shape[2]} pixels, row 0 has "
                             f"{cells[0].shape[1]}x{cells[0].shape[2]}")
        cells.append(rgb)
    k = max(len(c) for c in cells)
    h, w = cells[0].shape[1:3]
    blank = np.full((1, h, w, 3), background, dtype=np.uint8)
    panels = np.concatenate([np.concatenate([c, blank.repeat(k - len(c), axis=0)]) for c in cells])
    panels = panels.repeat(scale, axis=1).repeat(scale, axis=2)
    grid = tile(panels, ncols=k, pad=gap, pad_value=background)
    return np.pad(grid, ((gap, gap), (gap, gap), (0, 0)), constant_values=background)

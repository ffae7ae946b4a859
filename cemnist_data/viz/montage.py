"""Montages of samples with their masks overlaid, train-view vs full-mask comparisons, task strips.

Cells are coloured by :func:`.overlay.overlay`; the per-task strip is the release card's preview grid
(:func:`.overlay.overlay_grid`, :mod:`cemnist_data.preview`) with a title, row labels and a legend."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .figures import new_figure, save_figure
from .overlay import as_uint8_array, label_image, overlay, overlay_grid, validate_pair
from ..labels import IGNORE
from ..preview import PREVIEW_ALPHA, PREVIEW_BLEND
from .palette import legend_handles

PANEL_INCHES = 1.15
STRIP_GAP = 4
"""Pixels between the cells of the per-task strip (as in the release card's preview)."""


def digits_present(mask: np.ndarray) -> list[int]:
    """Digits (0..9) labelled somewhere in ``mask``."""
    vals = np.unique(mask)
    return [int(v) - 1 for v in vals if 1 <= v <= 10]


def _add_legend(fig: Any, *, include_ignore: bool, ncol: int, y: float) -> None:
    handles = legend_handles(range(10), include_ignore=include_ignore)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False, fontsize=8,
               bbox_to_anchor=(0.5, y), handlelength=1.2, columnspacing=1.0)


def _legend_cols(width_in: float, n_items: int) -> int:
    return max(1, min(n_items, int(width_in / 0.78)))


def montage_figure(
    images: Any,
    masks: Any,
    *,
    title: str | None = None,
    ncols: int = 8,
    alpha: float = 0.65,
    captions: Sequence[str] | None = None,
    legend: bool = True,
) -> Any:
    """Figure with one panel per sample (image with its mask overlaid), a palette legend and a title."""
    img, msk = validate_pair(images, masks)
    if img.ndim == 2:
        img, msk = img[None], msk[None]
    n = img.shape[0]
    if ncols <= 0:
        raise ValueError(f"ncols must be positive, got {ncols}")
    if captions is not None and len(captions) != n:
        raise ValueError(f"captions has {len(captions)} entries for {n} images")
    rgb = overlay(img, msk, alpha=alpha)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    include_ignore = bool((msk == IGNORE).any())
    width = max(ncols * PANEL_INCHES, 4.5)
    n_leg = 10 + include_ignore
    leg_rows = -(-n_leg // _legend_cols(width, n_leg)) if legend else 0
    top_in = 0.45 if title else 0.1
    bottom_in = 0.1 + 0.24 * leg_rows
    height = nrows * (PANEL_INCHES + 0.18) + top_in + bottom_in
    fig = new_figure(width, height, dpi=100)
    grid_w = ncols * PANEL_INCHES / width
    left = (1 - grid_w) / 2
    gs = fig.add_gridspec(nrows, ncols, left=left, right=left + grid_w, top=1 - top_in / height,
                          bottom=bottom_in / height, wspace=0.06, hspace=0.22)
    for i in range(n):
        ax = fig.add_subplot(gs[i // ncols, i % ncols])
        ax.imshow(rgb[i], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
        cap = captions[i] if captions is not None else " ".join(str(d) for d in digits_present(msk[i])) or "(bg only)"
        ax.set_title(cap, fontsize=7, pad=2)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.08 / height)
    if legend:
        _add_legend(fig, include_ignore=include_ignore, ncol=_legend_cols(width, n_leg), y=0.02 / height)
    return fig


def show(
    images: Any,
    masks: Any,
    *,
    out: str | os.PathLike[str],
    title: str | None = None,
    ncols: int = 8,
    alpha: float = 0.65,
    captions: Sequence[str] | None = None,
    dpi: int = 150,
) -> Path:
    """Write a montage PNG of ``images`` [N, 60, 60] with ``masks`` overlaid; returns the path."""
    fig = montage_figure(images, masks, title=title, ncols=ncols, alpha=alpha, captions=captions)
    return save_figure(fig, out, dpi=dpi)


def compare_figure(
    images: Any,
    train_masks: Any,
    full_masks: Any,
    *,
    title: str | None = None,
    alpha: float = 0.65,
) -> Any:
    """Rows of [image | train view | full mask | what the train view hides] for each sample.

    The train view (background shift) labels only the current task's digits; other digits are
    background there. The last column colours exactly the pixels whose label differs.
    """
    img, tm = validate_pair(images, train_masks)
    _, fm = validate_pair(img, full_masks)
    if img.ndim == 2:
        img, tm, fm = img[None], tm[None], fm[None]
    n = img.shape[0]
    width = 4 * PANEL_INCHES * 1.25 + 0.4
    top_in = 0.75 if title else 0.45
    bottom_in = 0.6
    row_h = PANEL_INCHES * 1.25 + 0.22
    height = n * row_h + top_in + bottom_in
    fig = new_figure(width, height, dpi=100)
    gs = fig.add_gridspec(n, 4, left=0.04, right=0.96, top=1 - top_in / height, bottom=bottom_in / height,
                          wspace=0.08, hspace=0.3)
    heads = ["image", "train view (mask)", "full mask", "relabelled to bg"]
    for i in range(n):
        differs = tm[i] != fm[i]
        diff_mask = np.where(differs, fm[i], 0).astype(np.uint8)
        dim = (img[i].astype(np.uint16) * 2 // 5).astype(np.uint8)
        panels = [
            np.repeat(img[i][..., None], 3, axis=-1),
            overlay(img[i], tm[i], alpha=alpha),
            overlay(img[i], fm[i], alpha=alpha),
            overlay(dim, diff_mask, alpha=1.0),
        ]
        subs = [
            "",
            "digits " + (",".join(map(str, digits_present(tm[i]))) or "none"),
            "digits " + (",".join(map(str, digits_present(fm[i]))) or "none"),
            f"{int(differs.sum())} px",
        ]
        for j in range(4):
            ax = fig.add_subplot(gs[i, j])
            ax.imshow(panels[j], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            label = (heads[j] + "\n" if i == 0 else "") + subs[j]
            ax.set_title(label, fontsize=8, pad=2)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.08 / height)
    include_ignore = bool((tm == IGNORE).any() or (fm == IGNORE).any())
    _add_legend(fig, include_ignore=include_ignore, ncol=6, y=0.02 / height)
    return fig


def show_compare(
    images: Any,
    train_masks: Any,
    full_masks: Any,
    *,
    out: str | os.PathLike[str],
    title: str | None = None,
    alpha: float = 0.65,
    dpi: int = 150,
) -> Path:
    """Write the train-view vs full-mask comparison PNG; returns the path."""
    return save_figure(compare_figure(images, train_masks, full_masks, title=title, alpha=alpha), out, dpi=dpi)


def preview_strip_figure(
    rows: Sequence[tuple[Any, Any]],
    *,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    alpha: float = PREVIEW_ALPHA,
    blend: str = PREVIEW_BLEND,
) -> Any:
    """One row per task: a few (image, mask) samples overlaid, row label on the left, one legend.

    The samples are the grid of the release card's preview (:mod:`cemnist_data.preview`): the same
    :func:`~.overlay.overlay_grid` and, by default, the same colouring rule; matplotlib adds the title, the row
    labels and the legend."""
    if len(rows) == 0:
        raise ValueError("need at least one row (one per task)")
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"row_labels has {len(row_labels)} entries for {len(rows)} rows")
    grid = overlay_grid(rows, scale=1, gap=STRIP_GAP, alpha=alpha, blend=blend)
    masks = [as_uint8_array(mk, name="masks") for _, mk in rows]  # valid: overlay_grid checked every row
    any_ignore = any(bool((m == IGNORE).any()) for m in masks)
    cell = masks[0].shape[-2]
    ncols = max(1 if m.ndim == 2 else m.shape[0] for m in masks)
    label_in = 1.3 if row_labels is not None else 0.1
    grid_w = ncols * PANEL_INCHES
    grid_h = grid_w * grid.shape[0] / grid.shape[1]
    width = label_in + grid_w + 0.1
    top_in = 0.45 if title else 0.1
    bottom_in = 0.1 + 0.24 * 2
    height = grid_h + top_in + bottom_in
    fig = new_figure(width, height, dpi=100)
    ax = fig.add_axes((label_in / width, bottom_in / height, grid_w / width, grid_h / height))
    ax.imshow(grid, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    if row_labels is not None:
        centres = [STRIP_GAP + r * (cell + STRIP_GAP) + (cell - 1) / 2 for r in range(len(rows))]
        ax.set_yticks(centres, labels=list(row_labels), fontsize=9)
        ax.tick_params(axis="y", length=0, pad=6)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.08 / height)
    n_leg = 10 + any_ignore
    _add_legend(fig, include_ignore=any_ignore, ncol=_legend_cols(width, n_leg), y=0.02 / height)
    return fig


def preview_strip(
    rows: Sequence[tuple[Any, Any]],
    *,
    out: str | os.PathLike[str],
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    alpha: float = PREVIEW_ALPHA,
    blend: str = PREVIEW_BLEND,
    dpi: int = 150,
) -> Path:
    """Write the per-task preview strip PNG (one row per task; :func:`preview_strip_figure`); returns the path."""
    fig = preview_strip_figure(rows, row_labels=row_labels, title=title, alpha=alpha, blend=blend)
    return save_figure(fig, out, dpi=dpi)


__all__ = ["montage_figure", "show", "compare_figure", "show_compare", "preview_strip_figure", "preview_strip",
           "digits_present", "label_image"]

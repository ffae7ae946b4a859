"""Plots drawn from run result JSONs only (so they can be redrawn without retraining)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from cemnist_data.viz.figures import new_figure, save_figure
from ..results import Curve, class_iou_matrix, metric_curves, single_group

# Method line colours (Okabe–Ito order, distinct from nothing else needed; "joint" is the dashed upper bound).
_METHOD_COLORS = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#999933", "#882255",
                  "#332288", "#44AA99", "#117733")
_METRIC_NAMES = {"miou_bg": "mIoU incl. background", "miou": "mIoU over digits"}


# the built-in incremental methods keep one colour in every picture (overlap and disjoint show different subsets)
_BUILTIN_ORDER = ("naive", "kd", "ilt", "pl", "mib", "plop", "replay", "lwf", "plop_tuned")


def method_style(method: str, index: int) -> dict[str, Any]:
    """Line style for a method: a fixed colour per built-in method, the remaining colours by position
    ``index`` for any other (plug-in) method, dashed black for ``joint``/``offline``."""
    if method in ("joint", "offline"):
        return {"color": "#000000", "linestyle": "--", "marker": "s"}
    if method in _BUILTIN_ORDER:
        return {"color": _METHOD_COLORS[_BUILTIN_ORDER.index(method)], "linestyle": "-", "marker": "o"}
    return {"color": _METHOD_COLORS[(len(_BUILTIN_ORDER) + index) % len(_METHOD_COLORS)], "linestyle": "-",
            "marker": "o"}


def task_tick_labels(tasks: Sequence[Sequence[int]]) -> list[str]:
    """``[[0,1],[2,3]]`` -> ``["1\\n+0,1", "2\\n+2,3"]`` (task number, digits added)."""
    return [f"{t}\n+{','.join(str(d) for d in ds)}" for t, ds in enumerate(tasks)]


def plot_miou_curves(
    runs: Sequence[Mapping[str, Any]],
    *,
    out: str | os.PathLike[str] | None = None,
    metric: str = "miou_bg",
    title: str | None = None,
    dpi: int = 150,
) -> dict[str, Curve]:
    """mIoU after each task per method, mean line with a ± std band over seeds.

    Returns the plotted curves (fractions, not percent). Writes a PNG when ``out`` is given.
    """
    if metric not in _METRIC_NAMES:
        raise ValueError(f"metric must be one of {sorted(_METRIC_NAMES)}, got {metric!r}")
    setting, mode, pid, device = single_group(runs)
    curves = metric_curves(runs, metric=metric)
    tasks = runs[0]["tasks"]
    x = np.arange(len(tasks))
    fig = new_figure(6.4, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    for i, (method, c) in enumerate(curves.items()):
        st = method_style(method, i)
        nseeds = int(c.n.max()) if c.n.size else 0
        finite = np.isfinite(c.mean)
        if finite.sum() == 1 and len(tasks) > 1:
            # Single-stage run (e.g. joint training on all classes): a horizontal reference line.
            j = int(np.nonzero(finite)[0][0])
            ax.axhline(c.mean[j] * 100, color=st["color"], linestyle="--", linewidth=1.5,
                       label=f"{method} (n={nseeds}, all classes at once)")
            ax.axhspan((c.mean[j] - c.std[j]) * 100, (c.mean[j] + c.std[j]) * 100, color=st["color"], alpha=0.12,
                       linewidth=0)
            continue
        ax.plot(x, c.mean * 100, label=f"{method} (n={nseeds})", linewidth=2, markersize=5, **st)
        ax.fill_between(x, (c.mean - c.std) * 100, (c.mean + c.std) * 100, color=st["color"], alpha=0.18,
                        linewidth=0)
    ax.set_xticks(x)
    ax.set_xticklabels(task_tick_labels(tasks), fontsize=8)
    ax.set_xlabel("after task (digits added)")
    ax.set_ylabel(f"{_METRIC_NAMES[metric]} (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(-0.2, len(tasks) - 0.8 if len(tasks) > 1 else 0.2)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    ax.set_title(title or f"CEMNIST {setting} {mode} [{device}]: {_METRIC_NAMES[metric]} after each task\n"
                 "(fixed test pool, future classes → background; mean ± std over seeds)", fontsize=9)
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out, dpi=dpi)
    return curves


def plot_class_iou_heatmaps(
    runs: Sequence[Mapping[str, Any]],
    *,
    out: str | os.PathLike[str] | None = None,
    include_bg: bool = True,
    annotate: bool = True,
    title: str | None = None,
    dpi: int = 150,
) -> dict[str, np.ndarray]:
    """Per-class IoU heatmap (class × task step), one panel per method, mean over seeds.

    Rows follow the class order (so each task is a block; task blocks are separated by white lines),
    background first when ``include_bg``. Unseen classes are grey. Returns ``{method: [rows, T]}``
    matrices in the plotted row order (fractions).
    """
    setting, mode, pid, device = single_group(runs)
    mats = class_iou_matrix(runs)
    tasks = [list(map(int, t)) for t in runs[0]["tasks"]]
    order = [d for t in tasks for d in t]
    rows = ([0] if include_bg else []) + [d + 1 for d in order]
    row_names = (["bg"] if include_bg else []) + [str(d) for d in order]
    plotted = {m: mat[rows] for m, mat in mats.items()}
    n = len(plotted)
    ncols = min(n, 4)
    nrows = -(-n // ncols)
    T = len(tasks)
    cell_w = max(0.42, 2.2 / T)
    panel_w = T * cell_w + 0.7
    panel_h = len(rows) * 0.3 + 0.9
    fig = new_figure(ncols * panel_w + 1.0, nrows * panel_h + 0.5)
    from matplotlib import colormaps

    cmap = colormaps["viridis"].with_extremes(bad="#d9d9d9")
    im = None
    for k, (method, mat) in enumerate(plotted.items()):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        im = ax.imshow(np.ma.masked_invalid(mat), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto",
                       interpolation="nearest")
        ax.set_xticks(range(T))
        ax.set_xticklabels([str(t) for t in range(T)], fontsize=8)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(row_names if k % ncols == 0 else [], fontsize=8)
        ax.set_xlabel("after task", fontsize=8)
        if k % ncols == 0:
            ax.set_ylabel("class", fontsize=8)
        ax.set_title(method, fontsize=9)
        offset = 1 if include_bg else 0
        bounds = ([1] if include_bg else []) + [offset + sum(len(t) for t in tasks[: i + 1]) for i in range(T - 1)]
        for b in bounds:
            ax.axhline(b - 0.5, color="white", linewidth=2)
        if annotate:
            for (r, c), v in np.ndenumerate(mat):
                if np.isfinite(v):
                    ax.text(c, r, f"{v * 100:.0f}", ha="center", va="center", fontsize=6.5,
                            color="black" if v > 0.55 else "white")
    if im is not None:
        cb = fig.colorbar(im, ax=fig.axes, fraction=0.025, pad=0.02)
        cb.set_label("IoU (grey: class not seen yet)", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    fig.suptitle(title or f"CEMNIST {setting} {mode} [{device}]: per-class IoU after each task (mean over seeds)",
                 fontsize=9)
    if out is not None:
        save_figure(fig, out, dpi=dpi)
    return plotted

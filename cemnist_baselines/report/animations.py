"""Training animations from ``.trace.safetensors`` files (see docs/INTERFACES.md), written as GIFs.

1. :func:`confusion_gif` — the row-normalised confusion matrix after every recorded epoch, across all
   tasks, with the task boundaries marked on a timeline and the step in every frame's title.
2. :func:`prediction_gif` — predictions on the fixed panel of test images after every task, side by
   side for several methods (e.g. naive / kd / mib) and the ground truth.

Both are written by one :class:`GifOptions` (bounds and frame durations; :data:`CONFUSION_GIF`,
:data:`PREDICTION_GIF` are their defaults).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from cemnist_data.viz.figures import figure_to_rgb, new_figure
from cemnist_data.viz.gif import (DEFAULT_MAX_BYTES, DEFAULT_MAX_FRAMES, DEFAULT_MAX_SIDE, GifInfo, select_frames,
                                  write_gif)
from cemnist_data.labels import IGNORE
from cemnist_data.viz.overlay import check_mask_values, overlay, validate_pair
from cemnist_data.viz.palette import DIGIT_COLORS_HEX, legend_handles
from ..results import method_sort_key

TRACE_SUFFIX = ".trace.safetensors"


@dataclass(frozen=True)
class GifOptions:
    """How an animation is written (:func:`cemnist_data.viz.gif.write_gif`): at most ``max_frames`` frames
    (evenly subsampled, the end of every task kept), ``max_bytes`` bytes and ``max_side`` pixels a side; each
    frame is shown ``duration_ms``, the last one ``last_frame_ms``. Change one field with
    :func:`dataclasses.replace`, e.g. ``replace(CONFUSION_GIF, max_frames=30)``."""

    duration_ms: int
    last_frame_ms: int
    max_frames: int = DEFAULT_MAX_FRAMES
    max_bytes: int = DEFAULT_MAX_BYTES
    max_side: int = DEFAULT_MAX_SIDE

    def write(self, frames: Sequence[np.ndarray], out: str | os.PathLike[str]) -> GifInfo:
        """Write ``frames`` (RGB uint8 ``[H, W, 3]``) as a GIF at ``out`` with these options."""
        return write_gif(frames, out, duration_ms=self.duration_ms, last_frame_ms=self.last_frame_ms,
                         max_frames=self.max_frames, max_bytes=self.max_bytes, max_side=self.max_side)


CONFUSION_GIF = GifOptions(duration_ms=350, last_frame_ms=2500)
"""The confusion GIF's defaults: short frames (one per recorded epoch)."""
PREDICTION_GIF = GifOptions(duration_ms=1200, last_frame_ms=3000)
"""The prediction GIF's defaults: long frames (one per task)."""


@dataclass
class Trace:
    """Contents of one trace file."""

    epoch_confusion: np.ndarray  # int64 [E, 11, 11]
    epoch_task: np.ndarray  # int64 [E]
    epoch_index: np.ndarray  # int64 [E], 1-based within the task
    panel_images: np.ndarray  # uint8 [P, H, W]
    panel_full_masks: np.ndarray  # uint8 [P, H, W]
    panel_pred: np.ndarray  # uint8 [T, P, H, W]
    metadata: dict[str, str] = field(default_factory=dict)
    result: dict[str, Any] | None = None  # the companion result JSON when it was found
    path: Path | None = None

    @property
    def method(self) -> str:
        return str(self.metadata.get("method") or (self.result or {}).get("method") or "?")

    @property
    def seed(self) -> str:
        return str(self.metadata.get("seed", (self.result or {}).get("seed", "?")))

    @property
    def tasks(self) -> list[list[int]] | None:
        return None if self.result is None else [list(map(int, t)) for t in self.result["tasks"]]


def validate_trace(tensors: Mapping[str, np.ndarray], *, name: str = "trace") -> None:
    """Check the tensor names, dtypes and shapes of a trace; raise ValueError naming the problem."""
    need = {"epoch_confusion": 3, "epoch_task": 1, "epoch_index": 1, "panel_images": 3,
            "panel_full_masks": 3, "panel_pred": 4}
    for key, ndim in need.items():
        if key not in tensors:
            raise ValueError(f"{name}: missing tensor {key!r}")
        if tensors[key].ndim != ndim:
            raise ValueError(f"{name}: {key} must have {ndim} dims, got shape {tensors[key].shape}")
    conf = tensors["epoch_confusion"]
    E = conf.shape[0]
    if E <= 0 or conf.shape[1:] != (11, 11):
        raise ValueError(f"{name}: epoch_confusion must be [E>0, 11, 11], got {conf.shape}")
    if tensors["epoch_task"].shape != (E,) or tensors["epoch_index"].shape != (E,):
        raise ValueError(f"{name}: epoch_task/epoch_index must be [{E}], got {tensors['epoch_task'].shape} "
                         f"and {tensors['epoch_index'].shape}")
    if np.any(np.diff(tensors["epoch_task"]) < 0):
        raise ValueError(f"{name}: epoch_task must be non-decreasing")
    if (conf < 0).any():
        raise ValueError(f"{name}: epoch_confusion has negative counts")
    img, full, pred = tensors["panel_images"], tensors["panel_full_masks"], tensors["panel_pred"]
    validate_pair(img, full)
    if pred.shape[1:] != img.shape:
        raise ValueError(f"{name}: panel_pred must be [T, {', '.join(map(str, img.shape))}], got {pred.shape}")
    if pred.dtype != np.uint8:
        raise ValueError(f"{name}: panel_pred must be uint8, got {pred.dtype}")
    check_mask_values(pred, name=f"{name}: panel_pred")


def load_trace(path: str | os.PathLike[str]) -> Trace:
    """Load a trace file (safetensors, no pickle) and its companion result JSON when present."""
    from ..artifacts import read_safetensors
    from ..results import load_result

    path = Path(path)
    tt, meta = read_safetensors(path, what="trace")  # damaged/truncated files: ValueError naming the file
    tensors = {k: v.numpy() for k, v in tt.items()}
    validate_trace(tensors, name=str(path))
    result = None
    rname = meta.get("result")
    cand = path.parent / rname if rname else path.with_name(path.name[: -len(TRACE_SUFFIX)] + ".json")
    if cand.is_file():
        result = load_result(cand)
        if meta.get("run_id") != result.get("run_id"):
            raise ValueError(f"{path}: trace belongs to run {meta.get('run_id')!r} but {cand.name} is run "
                             f"{result.get('run_id')!r} (a leftover from another run); delete the stale file")
    return Trace(
        epoch_confusion=tensors["epoch_confusion"].astype(np.int64),
        epoch_task=tensors["epoch_task"].astype(np.int64),
        epoch_index=tensors["epoch_index"].astype(np.int64),
        panel_images=tensors["panel_images"].astype(np.uint8),
        panel_full_masks=tensors["panel_full_masks"].astype(np.uint8),
        panel_pred=tensors["panel_pred"].astype(np.uint8),
        metadata=meta, result=result, path=path,
    )


def _as_trace(t: Trace | str | os.PathLike[str]) -> Trace:
    return t if isinstance(t, Trace) else load_trace(t)


def row_normalise(conf: np.ndarray) -> np.ndarray:
    """Row-normalised confusion (rows = true label); rows without pixels become NaN."""
    conf = np.asarray(conf, dtype=np.float64)
    rows = conf.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, conf / rows, np.nan)


def confusion_frame_indices(epoch_task: np.ndarray, epoch_index: np.ndarray, *, every: int = 1,
                            max_frames: int = DEFAULT_MAX_FRAMES) -> list[int]:
    """Indices of the epochs drawn: every ``every``-th epoch of each task, always the last epoch of
    every task (task boundaries), capped at ``max_frames`` by even subsampling."""
    if every <= 0:
        raise ValueError(f"every must be positive, got {every}")
    E = len(epoch_task)
    last_of_task = [i for i in range(E) if i == E - 1 or epoch_task[i + 1] != epoch_task[i]]
    cand = sorted({i for i in range(E) if int(epoch_index[i]) % every == 0} | set(last_of_task))
    pos = {c: k for k, c in enumerate(cand)}
    keep = [pos[i] for i in last_of_task]
    return [cand[k] for k in select_frames(len(cand), max_frames=max_frames, keep=keep)]


def confusion_frames(
    trace: Trace | str | os.PathLike[str],
    *,
    every: int = 1,
    max_frames: int = DEFAULT_MAX_FRAMES,
    tasks: Sequence[Sequence[int]] | None = None,
    title: str | None = None,
    dpi: int = 100,
) -> tuple[list[np.ndarray], list[int]]:
    """Render the confusion-matrix frames; returns (RGB frames, epoch indices drawn)."""
    tr = _as_trace(trace)
    tasks = [list(map(int, t)) for t in tasks] if tasks is not None else tr.tasks
    E = tr.epoch_confusion.shape[0]
    T = int(tr.epoch_task.max()) + 1
    idx = confusion_frame_indices(tr.epoch_task, tr.epoch_index, every=every, max_frames=max_frames)
    order = [0] + ([d + 1 for t in tasks for d in t] if tasks else list(range(1, 11)))
    names = ["bg"] + [str(l - 1) for l in order[1:]]
    mats = row_normalise(tr.epoch_confusion[:, order][:, :, order])

    from matplotlib import colormaps
    from matplotlib.patches import Rectangle

    fig = new_figure(6.0, 6.4, dpi=dpi)
    ax = fig.add_axes((0.12, 0.26, 0.72, 0.62))
    cax = fig.add_axes((0.86, 0.26, 0.025, 0.62))
    tax = fig.add_axes((0.12, 0.07, 0.72, 0.07))
    cmap = colormaps["viridis"].with_extremes(bad="#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(mats[idx[0]]), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(11))
    ax.set_yticks(range(11))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_yticklabels(names, fontsize=8)
    for lab in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        if lab.get_text() != "bg":
            col = DIGIT_COLORS_HEX[int(lab.get_text())]
            r, g, b = (int(col[k:k + 2], 16) for k in (1, 3, 5))
            lab.set_color("black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white")
            lab.set_bbox({"facecolor": col, "edgecolor": "none", "pad": 1.2})
    ax.set_xlabel("predicted label", fontsize=9)
    ax.set_ylabel("true label", fontsize=9)
    cb = fig.colorbar(im, cax=cax)
    cb.set_label("fraction of the true label's pixels (row-normalised)", fontsize=7)
    cb.ax.tick_params(labelsize=7)
    # Task blocks: white lines between the class groups of consecutive tasks.
    if tasks:
        b = 1
        for t in tasks:
            ax.axhline(b - 0.5, color="white", linewidth=1.2)
            ax.axvline(b - 0.5, color="white", linewidth=1.2)
            b += len(t)
    hl = Rectangle((0, 0), 1, 1, fill=False, edgecolor="#FF2D2D", linewidth=2.2)
    ax.add_patch(hl)
    # Timeline of all recorded epochs with task boundaries.
    tax.set_xlim(-0.5, E - 0.5)
    tax.set_ylim(0, 1)
    tax.set_yticks([])
    for t in range(T):
        sel = np.nonzero(tr.epoch_task == t)[0]
        if sel.size:
            tax.axvspan(sel[0] - 0.5, sel[-1] + 0.5, color="#bbbbbb" if t % 2 else "#e5e5e5", linewidth=0)
            tax.text((sel[0] + sel[-1]) / 2, 0.5, f"task {t}", ha="center", va="center", fontsize=7)
            if t > 0:
                tax.axvline(sel[0] - 0.5, color="black", linewidth=1.5)
    tax.set_xticks([])
    tax.set_xlabel("recorded epochs (task boundaries = black lines)", fontsize=7)
    cursor = tax.axvline(0, color="#FF2D2D", linewidth=3)
    head = title or f"{tr.method} (seed {tr.seed})"
    sup = fig.suptitle("", fontsize=10, y=0.975)
    frames = []
    for i in idx:
        im.set_data(np.ma.masked_invalid(mats[i]))
        t = int(tr.epoch_task[i])
        n_ep = int(tr.epoch_index[tr.epoch_task == t].max())
        digits = tasks[t] if tasks and t < len(tasks) else None
        if tasks and t < len(tasks):
            start = 1 + sum(len(x) for x in tasks[:t])
            hl.set_bounds(start - 0.5, start - 0.5, len(tasks[t]), len(tasks[t]))
            hl.set_visible(True)
        else:
            hl.set_visible(False)
        cursor.set_xdata([i, i])
        dig = f" (digits {','.join(map(str, digits))})" if digits else ""
        sup.set_text(f"{head}\ntask {t} ({t + 1} of {T}){dig}, epoch {int(tr.epoch_index[i])}/{n_ep} · frame {i + 1}/{E}")
        frames.append(figure_to_rgb(fig))
    return frames, idx


def confusion_gif(
    trace: Trace | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    every: int = 1,
    tasks: Sequence[Sequence[int]] | None = None,
    title: str | None = None,
    options: GifOptions = CONFUSION_GIF,
) -> GifInfo:
    """Write the confusion-matrix-per-epoch GIF for one trace (bounded, deterministic)."""
    frames, _ = confusion_frames(trace, every=every, max_frames=options.max_frames, tasks=tasks, title=title)
    return options.write(frames, out)


def seen_labels_mask(full: np.ndarray, seen_digits: Sequence[int]) -> np.ndarray:
    """Full mask restricted to ``seen_digits`` (other digits become background; 255 stays)."""
    keep = np.zeros(256, dtype=bool)
    keep[0] = True
    keep[IGNORE] = True
    keep[[d + 1 for d in seen_digits]] = True
    return np.where(keep[full], full, 0).astype(np.uint8)


def prediction_frames(
    traces: Mapping[str, Trace | str | os.PathLike[str]] | Sequence[Trace | str | os.PathLike[str]],
    *,
    max_images: int = 4,
    tasks: Sequence[Sequence[int]] | None = None,
    title: str | None = None,
    alpha: float = 0.8,
    dpi: int = 100,
) -> list[np.ndarray]:
    """One RGB frame per task: rows = panel images, columns = methods then the ground truth
    (full mask restricted to the digits seen so far)."""
    if isinstance(traces, Mapping):
        items = [(str(k), _as_trace(v)) for k, v in traces.items()]
    else:
        items = [(tr.method, tr) for tr in map(_as_trace, traces)]
    if not items:
        raise ValueError("need at least one trace")
    if max_images <= 0:
        raise ValueError(f"max_images must be positive, got {max_images}")
    items.sort(key=lambda kv: method_sort_key(kv[0]))
    ref = items[0][1]
    for name, tr in items[1:]:
        if tr.panel_images.shape != ref.panel_images.shape or not np.array_equal(tr.panel_images, ref.panel_images):
            raise ValueError(f"trace of {name!r} has a different image panel than {items[0][0]!r}; "
                             "compare runs of the same setting, mode and panel")
        if tr.panel_pred.shape[0] != ref.panel_pred.shape[0]:
            raise ValueError(f"trace of {name!r} has {tr.panel_pred.shape[0]} tasks, {items[0][0]!r} has "
                             f"{ref.panel_pred.shape[0]}")
    tasks = [list(map(int, t)) for t in tasks] if tasks is not None else ref.tasks
    T = ref.panel_pred.shape[0]
    P = min(max_images, ref.panel_images.shape[0])
    img = ref.panel_images[:P]
    full = ref.panel_full_masks[:P]
    cols = [n for n, _ in items] + ["ground truth"]
    cell = 1.35
    width = len(cols) * cell + 0.3
    top_in, bottom_in = 0.75, 0.62
    height = P * cell + top_in + bottom_in
    fig = new_figure(width, height, dpi=dpi)
    gs = fig.add_gridspec(P, len(cols), left=0.15 / width, right=1 - 0.15 / width, top=1 - top_in / height,
                          bottom=bottom_in / height, wspace=0.04, hspace=0.04)
    ims = []
    for r in range(P):
        row = []
        for c, name in enumerate(cols):
            ax = fig.add_subplot(gs[r, c])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9, fontweight="bold" if name == "ground truth" else "normal")
            row.append(ax.imshow(np.zeros((*img.shape[1:], 3), np.uint8), interpolation="nearest"))
        ims.append(row)
    fig.legend(handles=legend_handles(range(10)), loc="lower center", ncol=5, frameon=False, fontsize=7,
               bbox_to_anchor=(0.5, 0.01), handlelength=1.0, columnspacing=0.8)
    sup = fig.suptitle("", fontsize=9.5, y=1 - 0.06 / height)
    frames = []
    for t in range(T):
        seen = [d for ts in tasks[: t + 1] for d in ts] if tasks else list(range(10))
        gt = seen_labels_mask(full, seen)
        for r in range(P):
            for c, (_, tr) in enumerate(items):
                ims[r][c].set_data(overlay(img[r], tr.panel_pred[t, r], alpha=alpha))
            ims[r][-1].set_data(overlay(img[r], gt[r], alpha=alpha))
        new = f"; new digits {','.join(map(str, tasks[t]))}" if tasks and t < len(tasks) else ""
        sup.set_text(f"{title + chr(10) if title else ''}predictions after task {t} ({t + 1} of {T}){new}")
        frames.append(figure_to_rgb(fig))
    return frames


def prediction_gif(
    traces: Mapping[str, Trace | str | os.PathLike[str]] | Sequence[Trace | str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    max_images: int = 4,
    tasks: Sequence[Sequence[int]] | None = None,
    title: str | None = None,
    options: GifOptions = PREDICTION_GIF,
) -> GifInfo:
    """Write the predictions-after-each-task GIF (methods side by side with the ground truth)."""
    frames = prediction_frames(traces, max_images=max_images, tasks=tasks, title=title)
    return options.write(frames, out)


def find_traces(results_dir: str | os.PathLike[str]) -> list[Path]:
    """All ``*.trace.safetensors`` files in ``results_dir`` (sorted)."""
    return sorted(Path(results_dir).glob(f"*{TRACE_SUFFIX}"))

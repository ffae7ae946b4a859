"""Segmentation metrics from confusion matrices in *label* space (0 = bg, d+1 = digit d, 255 ignored).

Conventions (documented in docs/INTERFACES.md):
- IoU of a seen label = TP / (TP + FP + FN); ``None`` when the label is unseen or when it is absent from
  both the ground truth and the predictions (union 0); means skip ``None``.
- ``*_bg`` means include background; the others average digit classes only (MiB's convention).
- R[t][k] = mean IoU over the digit classes of task k after task t (``None`` for k > t).
- Forgetting of digit c (learned before the last task) = max over earlier steps of IoU(c) - final IoU(c).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch

NUM_LABELS = 11
IGNORE = 255


def update_confusion(conf: torch.Tensor, true: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Accumulate in place (on ``conf``'s device): rows = true label, cols = predicted; 255 ignored."""
    k = conf.shape[0]
    t = true.reshape(-1).to(torch.int64)
    p = pred.reshape(-1).to(torch.int64)
    keep = t != IGNORE
    idx = t[keep] * k + p[keep]
    conf += torch.bincount(idx, minlength=k * k).reshape(k, k)
    return conf


def iou_per_label(conf: Sequence[Sequence[int]] | torch.Tensor, seen_labels: Sequence[int]) -> list[float | None]:
    """Per-label IoU (length = conf size); ``None`` for unseen labels and labels with empty union."""
    c = torch.as_tensor(conf, dtype=torch.float64).cpu()
    tp = c.diag()
    union = c.sum(0) + c.sum(1) - tp
    seen = set(int(s) for s in seen_labels)
    out: list[float | None] = []
    for i in range(c.shape[0]):
        out.append(float(tp[i] / union[i]) if i in seen and union[i] > 0 else None)
    return out


def mean_of(values: Sequence[float | None]) -> float | None:
    """Mean of the non-None values; None if there are none."""
    v = [x for x in values if x is not None]
    return sum(v) / len(v) if v else None


def step_metrics(conf: torch.Tensor, seen_labels: Sequence[int]) -> dict[str, Any]:
    """The per-task entry of ``steps``: confusion, iou_per_label, miou_bg, miou."""
    ious = iou_per_label(conf, seen_labels)
    digits = [lab for lab in seen_labels if lab != 0]
    return {
        "confusion": torch.as_tensor(conf).cpu().to(torch.int64).tolist(),
        "iou_per_label": ious,
        "miou_bg": mean_of([ious[lab] for lab in sorted(set(seen_labels) | {0})]),
        "miou": mean_of([ious[lab] for lab in digits]),
    }


def _mean_labels(ious: Sequence[float | None], labels: Sequence[int]) -> float | None:
    return mean_of([ious[lab] for lab in labels])


def summarize(steps: list[dict[str, Any]], tasks: Sequence[Sequence[int]], *, step_tasks: Sequence[int] | None = None) -> dict[str, Any]:
    """R matrix and ``final`` block from the per-step metrics.

    ``tasks``: digits per task (incremental protocol). ``step_tasks[i]``: the last task whose classes
    step i has seen (default i; the joint run has one step that has seen every task).
    """
    T = len(tasks)
    step_tasks = list(range(len(steps))) if step_tasks is None else list(step_tasks)
    task_labels = [[d + 1 for d in ds] for ds in tasks]
    R: list[list[float | None]] = []
    for s, st in zip(steps, step_tasks):
        R.append([_mean_labels(s["iou_per_label"], task_labels[k]) if k <= st else None for k in range(T)])
    last = steps[-1]["iou_per_label"]
    old = [lab for k in range(T - 1) for lab in task_labels[k]]
    new = task_labels[T - 1]
    forgetting: dict[str, float] = {}
    if len(steps) > 1:
        for k in range(T - 1):
            for lab in task_labels[k]:
                hist = [s["iou_per_label"][lab] for s in steps[:-1] if s["iou_per_label"][lab] is not None]
                if hist and last[lab] is not None:
                    forgetting[str(lab - 1)] = max(hist) - last[lab]
    final = {
        "miou_bg": steps[-1]["miou_bg"],
        "miou": steps[-1]["miou"],
        "old": _mean_labels(last, old),
        "new": _mean_labels(last, new),
        "old_bg": _mean_labels(last, [0] + old),
        "new_bg": _mean_labels(last, [0] + new),
        "avg_inc_miou_bg": mean_of([s["miou_bg"] for s in steps]),
        "avg_inc_miou": mean_of([s["miou"] for s in steps]),
        "forgetting_per_class": forgetting,
        "forgetting": mean_of(list(forgetting.values())),
        "task0_miou_bg": steps[0]["miou_bg"],
    }
    return {"R": R, "final": final}


def isfinite_or_none(x: float | None) -> bool:
    """True for None or a finite float (used by JSON validation)."""
    return x is None or math.isfinite(x)

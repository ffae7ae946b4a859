"""Segmentation metrics from one confusion matrix per trained task, in the *full* label space.

A run is scored after every task (the continual-learning literature's "learning step"; the result JSON's
``steps`` entries, :mod:`cemnist_baselines.results`) on the same fixed evaluation pool; the stored matrix
counts (true label from ``full_mask``, 0..10) x (predicted label, 0..10). Each reported number is a fold of
that matrix, computed after the fact:

- view ``future_bg`` (the headline; today's test ``mask`` convention, PLOP's): pixels of classes not seen
  yet count as background (their rows are added to row 0);
- view ``future_ignore`` (MiB's ``255`` convention): pixels of unseen classes are ignored (rows dropped).

Conventions (also in docs/INTERFACES.md and the README's leaderboard section):
- IoU of a seen label = TP / (TP + FP + FN); ``None`` for an unseen label, and for a label with an empty
  union (absent from both the ground truth and the predictions): such a label is skipped by every mean.
  A label absent from the ground truth but predicted has IoU 0. With the fixed pool every digit is present,
  so the empty-union rule only matters for subsets and hand-built matrices.
- ``*_bg`` includes background; the others average digit classes only (MiB's convention).
- R[t][k] = mean IoU over the digits of task k after task t (``None`` for k > t).
- ``old`` / ``new``: digits of the earlier tasks (0..T-2) / of the last task (T-1).
- ``first`` / ``later``: digits of the first task / of every task added afterwards (MiB's and PLOP's
  "0-1 | 2-9" columns in the 2-2 setting); ``first_bg`` adds background (PLOP counts background as old).
- ``forgetting_task`` (Chaudhry et al. 2018, "Riemannian walk"): for each earlier task k < T-1,
  max over the tasks l in [k, T-2] after which it was scored of R[l][k] minus R[T-1][k]; mean over k.
- ``forgetting_class``: the same per digit learned before the last task (max over the earlier tasks' scores of its IoU
  minus its final IoU); mean over those digits.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from cemnist_data.labels import IGNORE

VIEWS = ("future_bg", "future_ignore")
HEADLINE_VIEW = "future_bg"


def update_confusion(conf: torch.Tensor, true: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Accumulate in place (on ``conf``'s device): rows = true label, cols = predicted; 255 ignored."""
    k = conf.shape[0]
    t = true.reshape(-1).to(torch.int64)
    p = pred.reshape(-1).to(torch.int64)
    keep = t != IGNORE
    idx = t[keep] * k + p[keep]
    conf += torch.bincount(idx, minlength=k * k).reshape(k, k)
    return conf


def fold(conf: Sequence[Sequence[int]] | torch.Tensor, seen_labels: Sequence[int], view: str) -> torch.Tensor:
    """The full-label-space confusion folded to ``view``: rows of unseen labels moved to background
    (``future_bg``) or dropped (``future_ignore``). Columns are untouched (a model predicts seen labels only)."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of {VIEWS}")
    c = torch.as_tensor(conf, dtype=torch.int64).cpu().clone()
    seen = set(int(s) for s in seen_labels) | {0}
    unseen = [i for i in range(c.shape[0]) if i not in seen]
    if unseen:
        if view == "future_bg":
            c[0] += c[unseen].sum(0)
        c[unseen] = 0
    return c


def iou_per_label(conf: Sequence[Sequence[int]] | torch.Tensor, seen_labels: Sequence[int]) -> list[float | None]:
    """Per-label IoU (length = conf size); ``None`` for unseen labels and labels with empty union."""
    c = torch.as_tensor(conf, dtype=torch.float64).cpu()
    tp = c.diag()
    union = c.sum(0) + c.sum(1) - tp
    seen = set(int(s) for s in seen_labels) | {0}
    return [float(tp[i] / union[i]) if i in seen and union[i] > 0 else None for i in range(c.shape[0])]


def mean_of(values: Sequence[float | None]) -> float | None:
    """Mean of the non-None values; None if there are none."""
    v = [x for x in values if x is not None]
    return sum(v) / len(v) if v else None


def view_metrics(conf: Sequence[Sequence[int]] | torch.Tensor, seen_labels: Sequence[int], view: str) -> dict[str, Any]:
    """``iou_per_label``, ``miou_bg`` and ``miou`` of one view of a full-label-space confusion."""
    ious = iou_per_label(fold(conf, seen_labels, view), seen_labels)
    digits = sorted(set(int(s) for s in seen_labels) - {0})
    return {"iou_per_label": ious,
            "miou_bg": mean_of([ious[lab] for lab in [0] + digits]),
            "miou": mean_of([ious[lab] for lab in digits])}


def task_metrics(conf: torch.Tensor, seen_labels: Sequence[int]) -> dict[str, Any]:
    """The record of one trained task (an entry of the result's ``steps``): the full confusion, every view,
    and the headline view's ``iou_per_label`` / ``miou_bg`` / ``miou`` at the top level."""
    views = {v: view_metrics(conf, seen_labels, v) for v in VIEWS}
    return {"confusion": torch.as_tensor(conf).cpu().to(torch.int64).tolist(), **views[HEADLINE_VIEW],
            "views": views}


def _mean_labels(ious: Sequence[float | None], labels: Sequence[int]) -> float | None:
    return mean_of([ious[lab] for lab in labels])


def r_matrix(task_ious: Sequence[Sequence[float | None]], tasks: Sequence[Sequence[int]],
             seen_upto: Sequence[int]) -> list[list[float | None]]:
    """R[i][k]: mean IoU of task k's digits in record i (``None`` where record i has not seen task k:
    k > ``seen_upto[i]``)."""
    T = len(tasks)
    labels = [[d + 1 for d in ds] for ds in tasks]
    return [[_mean_labels(ious, labels[k]) if k <= st else None for k in range(T)]
            for ious, st in zip(task_ious, seen_upto)]


def forgetting_per_task(R: Sequence[Sequence[float | None]]) -> dict[str, float]:
    """Chaudhry et al. (2018): for each task k < T-1, max over tasks l in [k, T-2] of R[l][k] - R[T-1][k]."""
    T = len(R)
    out: dict[str, float] = {}
    for k in range(T - 1):
        hist = [R[l][k] for l in range(k, T - 1) if R[l][k] is not None]
        if hist and R[T - 1][k] is not None:
            out[str(k)] = max(hist) - R[T - 1][k]
    return out


def forgetting_per_class(task_ious: Sequence[Sequence[float | None]], tasks: Sequence[Sequence[int]]) -> dict[str, float]:
    """Per digit learned before the last task: max IoU after the earlier tasks - final IoU (keys = digits)."""
    last = task_ious[-1]
    out: dict[str, float] = {}
    for ds in tasks[:-1]:
        for d in ds:
            hist = [s[d + 1] for s in task_ious[:-1] if s[d + 1] is not None]
            if hist and last[d + 1] is not None:
                out[str(d)] = max(hist) - last[d + 1]
    return out


def final_metrics(task_records: list[dict[str, Any]], tasks: Sequence[Sequence[int]], view: str, *,
                  seen_upto: Sequence[int]) -> tuple[list[list[float | None]], dict[str, Any]]:
    """(R, final block) of one view; see the module docstring for every key."""
    vs = [s["views"][view] for s in task_records]
    ious = [v["iou_per_label"] for v in vs]
    T = len(tasks)
    R = r_matrix(ious, tasks, seen_upto)
    lab = [[d + 1 for d in ds] for ds in tasks]
    old = [x for k in range(T - 1) for x in lab[k]]
    new = lab[T - 1]
    first = lab[0]
    later = [x for k in range(1, T) for x in lab[k]]
    last = ious[-1]
    incremental = len(task_records) > 1
    f_task = forgetting_per_task(R) if incremental else {}
    f_class = forgetting_per_class(ious, tasks) if incremental else {}
    final = {
        "miou_bg": vs[-1]["miou_bg"], "miou": vs[-1]["miou"],
        "old": _mean_labels(last, old), "new": _mean_labels(last, new),
        "old_bg": _mean_labels(last, [0] + old), "new_bg": _mean_labels(last, [0] + new),
        "first": _mean_labels(last, first), "first_bg": _mean_labels(last, [0] + first),
        "later": _mean_labels(last, later), "later_bg": _mean_labels(last, [0] + later),
        "avg_inc_miou_bg": mean_of([v["miou_bg"] for v in vs]), "avg_inc_miou": mean_of([v["miou"] for v in vs]),
        "forgetting_task": mean_of(list(f_task.values())) if f_task else None,
        "forgetting_task_each": f_task,
        "forgetting_class": mean_of(list(f_class.values())) if f_class else None,
        "forgetting_class_each": f_class,
        "task0_miou_bg": vs[0]["miou_bg"] if incremental else None,
    }
    return R, final


def summarize(task_records: list[dict[str, Any]], tasks: Sequence[Sequence[int]], *,
              seen_upto: Sequence[int] | None = None) -> dict[str, Any]:
    """``{"R": {view: R}, "final": {view: block}}`` from the per-task records (:func:`task_metrics`).

    ``tasks``: digits per task. ``seen_upto[i]``: the last task whose classes record i has seen (default i;
    the joint run has one record that has seen every task)."""
    st = list(range(len(task_records))) if seen_upto is None else list(seen_upto)
    R: dict[str, Any] = {}
    final: dict[str, Any] = {}
    for v in VIEWS:
        R[v], final[v] = final_metrics(task_records, tasks, v, seen_upto=st)
    return {"R": R, "final": final}


def recompute_task_metrics(conf: Sequence[Sequence[int]], classes_seen: Sequence[int]) -> dict[str, Any]:
    """The metrics of a task record recomputed from its stored confusion (used by result validation)."""
    return task_metrics(torch.as_tensor(conf, dtype=torch.int64), [0] + [d + 1 for d in classes_seen])


def isfinite_or_none(x: float | None) -> bool:
    """True for None or a finite float (used by JSON validation)."""
    return x is None or math.isfinite(x)

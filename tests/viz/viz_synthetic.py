"""SYNTHETIC result folders for the visualisation tests only.

Nothing here is a benchmark result: the numbers are made up to look plausible (naive forgets,
kd forgets less, mib least) so that plots and reports have something to draw.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("naive", "kd", "mib")
SEEDS = (0, 1)
TASKS = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
# Fraction of an old class's pixels still recognised per task of age, per method (made up).
RETAIN = {"naive": 0.15, "kd": 0.6, "mib": 0.85}
EPOCHS_PER_TASK = 3
PANEL = 4


def iou_from_confusion(conf: np.ndarray) -> np.ndarray:
    tp = np.diag(conf).astype(np.float64)
    denom = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / denom, np.nan)


def synthetic_confusion(method: str, seed: int, t: int, progress: float = 1.0) -> np.ndarray:
    """11x11 confusion after (a fraction ``progress`` of) task ``t``; rows = true label."""
    rng = np.random.default_rng(1000 * seed + 10 * t + METHODS.index(method))
    conf = np.zeros((11, 11), dtype=np.int64)
    conf[0, 0] = 200_000
    for k, digits in enumerate(TASKS):
        for d in digits:
            n = 5000
            if k == t:
                p = 0.2 + 0.7 * progress
            elif k < t:
                p = 0.9 * RETAIN[method] ** (t - k) if method != "mib" else 0.9 * RETAIN[method] ** (0.5 * (t - k))
            else:
                p = 0.0
            p = float(np.clip(p + rng.normal(0, 0.02), 0, 0.98))
            correct = int(n * p)
            conf[d + 1, d + 1] = correct
            conf[d + 1, 0] = n - correct  # missed pixels become background
            conf[0, d + 1] += int(300 * (1 - p))
    return conf


def synthetic_run(method: str, seed: int) -> dict[str, Any]:
    steps, R = [], []
    for t in range(len(TASKS)):
        conf = synthetic_confusion(method, seed, t)
        iou = iou_from_confusion(conf)
        seen = [0] + [d + 1 for ts in TASKS[: t + 1] for d in ts]
        iou_list = [float(iou[l]) if l in seen else None for l in range(11)]
        steps.append({
            "task": t,
            "confusion": conf.tolist(),
            "iou_per_label": iou_list,
            "miou_bg": float(np.mean([iou[l] for l in seen])),
            "miou": float(np.mean([iou[l] for l in seen[1:]])),
        })
        R.append([float(np.mean([iou[d + 1] for d in TASKS[k]])) if k <= t else None for k in range(len(TASKS))])
    last = steps[-1]
    old = [d + 1 for ts in TASKS[:-1] for d in ts]
    new = [d + 1 for d in TASKS[-1]]
    iou = last["iou_per_label"]
    final = {
        "miou_bg": last["miou_bg"], "miou": last["miou"],
        "old": float(np.mean([iou[l] for l in old])), "new": float(np.mean([iou[l] for l in new])),
        "old_bg": float(np.mean([iou[l] for l in [0] + old])), "new_bg": float(np.mean([iou[l] for l in [0] + new])),
        "avg_inc_miou_bg": float(np.mean([s["miou_bg"] for s in steps])),
        "avg_inc_miou": float(np.mean([s["miou"] for s in steps])),
        "forgetting_per_class": {str(l - 1): 0.1 for l in old},
        "forgetting": 0.5 if method == "naive" else 0.2,
        "task0_miou_bg": steps[0]["miou_bg"],
    }
    return {
        "schema": "cemnist-baselines-result/1",
        "method": method, "seed": seed, "setting": "2-2", "mode": "overlap", "preset": "synthetic-test",
        "config": {"epochs": EPOCHS_PER_TASK, "lr": 0.01, "method": method, "note": "SYNTHETIC test data"},
        "dataset": {"version": "0.0.0-synthetic", "content_sha256": {}},
        "package_version": "0.0.0", "git_commit": None,
        "env": {"torch": "none", "cuda": None, "device": "cpu", "device_name": "synthetic"},
        "class_order": list(range(10)), "tasks": TASKS,
        "wall_time_per_task_s": [1.0] * len(TASKS),
        "steps": steps, "R": R, "final": final,
    }


def synthetic_panel(P: int = PANEL) -> tuple[np.ndarray, np.ndarray]:
    """Ring-shaped fake 'digits' with full masks."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:60, :60]
    img = np.zeros((P, 60, 60), np.uint8)
    msk = np.zeros((P, 60, 60), np.uint8)
    for i in range(P):
        for d in rng.choice(10, size=3, replace=False):
            cy, cx = rng.integers(12, 48, size=2)
            ring = np.abs(np.hypot(yy - cy, xx - cx) - 7) < 2
            img[i][ring] = 230
            msk[i][ring] = d + 1
    return img, msk


def synthetic_trace(method: str, seed: int, path: Path, result_name: str) -> None:
    from safetensors.numpy import save_file

    confs, ep_task, ep_idx = [], [], []
    for t in range(len(TASKS)):
        for e in range(1, EPOCHS_PER_TASK + 1):
            confs.append(synthetic_confusion(method, seed, t, progress=e / EPOCHS_PER_TASK))
            ep_task.append(t)
            ep_idx.append(e)
    img, full = synthetic_panel()
    preds = []
    rng = np.random.default_rng(seed)
    for t in range(len(TASKS)):
        pred = full.copy()
        for k, digits in enumerate(TASKS):
            for d in digits:
                if k > t or (k < t and rng.random() > RETAIN[method]):
                    pred[pred == d + 1] = 0
        preds.append(pred)
    tensors = {
        "epoch_confusion": np.stack(confs).astype(np.int64),
        "epoch_task": np.array(ep_task, np.int64),
        "epoch_index": np.array(ep_idx, np.int64),
        "panel_images": img,
        "panel_full_masks": full,
        "panel_pred": np.stack(preds).astype(np.uint8),
    }
    save_file(tensors, str(path), metadata={"result": result_name, "method": method, "seed": str(seed)})


def make_results_dir(root: Path, *, traces: bool = True) -> Path:
    """Write 3 methods x 2 seeds of SYNTHETIC result JSONs (+ traces for seed 0) into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for m in METHODS:
        for s in SEEDS:
            stem = f"{m}-2-2-overlap-seed{s}"
            (root / f"{stem}.json").write_text(json.dumps(synthetic_run(m, s), indent=1))
            if traces and s == 0:
                synthetic_trace(m, s, root / f"{stem}.trace.safetensors", f"{stem}.json")
    return root

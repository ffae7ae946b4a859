"""Reading run result JSONs (schema ``cemnist-baselines-result/1``) and summarising them."""
from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

SCHEMA = "cemnist-baselines-result/1"
# Methods in this order first (lower bound, distillation, MiB, upper bound), others alphabetically.
METHOD_ORDER = ("naive", "ft", "finetune", "ewc", "lwf", "kd", "ilt", "mib", "plop", "joint", "offline")
LEADERBOARD_METRICS = ("miou_bg", "miou", "old", "new", "avg_inc_miou_bg", "forgetting")


def method_sort_key(method: str) -> tuple[int, str]:
    """Sort key putting known methods in a fixed order."""
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def load_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and minimally validate one result JSON; adds ``_path`` with the file path."""
    path = Path(path)
    with path.open("r", encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a {SCHEMA} result (schema={data.get('schema') if isinstance(data, dict) else None!r})")
    for key in ("method", "seed", "setting", "mode", "tasks", "steps"):
        if key not in data:
            raise ValueError(f"{path}: result is missing the key {key!r}")
    if len(data["steps"]) == 0:
        raise ValueError(f"{path}: result has no steps")
    for i, step in enumerate(data["steps"]):
        iou = step.get("iou_per_label")
        if not isinstance(iou, list) or len(iou) != 11:
            raise ValueError(f"{path}: steps[{i}].iou_per_label must be a list of 11 values")
    data["_path"] = str(path)
    return data


def load_results(results_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Load every ``*.json`` result in ``results_dir`` (files of other schemas are skipped)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ValueError(f"results folder {results_dir} does not exist")
    out = []
    for p in sorted(results_dir.glob("*.json")):
        try:
            with p.open("r", encoding="utf-8") as fh:
                head = json.load(fh)
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(head, dict) and head.get("schema") == SCHEMA:
            out.append(load_result(p))
    return out


def group_key(run: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(setting, mode, preset)`` of a run (runs of different presets are never averaged together)."""
    return str(run["setting"]), str(run["mode"]), str(run.get("preset", "default"))


def group_runs(runs: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], dict[str, list[Mapping[str, Any]]]]:
    """``{(setting, mode, preset): {method: [runs sorted by seed]}}`` with methods in display order."""
    tmp: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        tmp[group_key(r)][str(r["method"])].append(r)
    out = {}
    for key in sorted(tmp):
        out[key] = {m: sorted(tmp[key][m], key=lambda r: int(r["seed"])) for m in sorted(tmp[key], key=method_sort_key)}
    return out


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) ignoring NaN/None."""
    arr = np.array([_nan(v) for v in values], dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std, int(arr.size)


def single_group(runs: Sequence[Mapping[str, Any]]) -> tuple[str, str, str]:
    """Check all runs share one (setting, mode, preset) and the same task list; return it."""
    if len(runs) == 0:
        raise ValueError("no runs given")
    keys = {group_key(r) for r in runs}
    if len(keys) != 1:
        raise ValueError(f"runs mix several (setting, mode, preset) groups {sorted(keys)}; plot one group at a time")
    tasks = {json.dumps(r["tasks"]) for r in runs}
    if len(tasks) != 1:
        raise ValueError(f"runs of one group disagree on the task list: {sorted(tasks)}")
    return next(iter(keys))


@dataclass(frozen=True)
class Curve:
    """Per-method metric after each task: mean and std over seeds, number of seeds per step."""

    method: str
    mean: np.ndarray  # [T]
    std: np.ndarray  # [T]
    n: np.ndarray  # [T]


def metric_curves(runs: Sequence[Mapping[str, Any]], *, metric: str = "miou_bg") -> dict[str, Curve]:
    """Metric (``"miou_bg"`` or ``"miou"`` of each step) after each task, mean ± std over seeds."""
    single_group(runs)
    n_tasks = len(runs[0]["tasks"])
    out = {}
    for method, rs in next(iter(group_runs(runs).values())).items():
        mean, std, n = np.full(n_tasks, np.nan), np.full(n_tasks, np.nan), np.zeros(n_tasks, dtype=np.int64)
        for t in range(n_tasks):
            vals = [s[metric] for r in rs for s in r["steps"] if int(s["task"]) == t and metric in s]
            mean[t], std[t], n[t] = mean_std(vals)
        out[method] = Curve(method, mean, std, n)
    return out


def class_iou_matrix(runs: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Per method: IoU per label (rows 0..10 = bg, digits 0..9) × task step, mean over seeds; NaN = unseen."""
    single_group(runs)
    n_tasks = len(runs[0]["tasks"])
    out = {}
    for method, rs in next(iter(group_runs(runs).values())).items():
        acc = np.full((len(rs), 11, n_tasks), np.nan)
        for i, r in enumerate(rs):
            for s in r["steps"]:
                t = int(s["task"])
                if 0 <= t < n_tasks:
                    acc[i, :, t] = [_nan(v) for v in s["iou_per_label"]]
        with np.errstate(invalid="ignore"):
            cnt = (~np.isnan(acc)).sum(axis=0)
            mean = np.where(cnt > 0, np.nansum(acc, axis=0) / np.maximum(cnt, 1), np.nan)
        out[method] = mean
    return out


def leaderboard_rows(runs: Sequence[Mapping[str, Any]], *, metrics: Sequence[str] = LEADERBOARD_METRICS) -> list[dict[str, Any]]:
    """One row per (setting, mode, method): ``n_seeds`` and ``{metric: (mean, std)}`` of ``final``."""
    rows = []
    for (setting, mode, preset), methods in group_runs(runs).items():
        for method, rs in methods.items():
            row: dict[str, Any] = {"setting": setting, "mode": mode, "preset": preset, "method": method,
                                   "n_seeds": len(rs)}
            for m in metrics:
                mu, sd, _ = mean_std([r.get("final", {}).get(m) for r in rs])
                row[m] = (mu, sd)
            rows.append(row)
    return rows


def read_leaderboard_csv(path: str | os.PathLike[str]) -> tuple[list[str], list[list[str]]]:
    """Read ``leaderboard.csv`` as (header, rows of strings) for display.

    A column ``X`` followed by a column ``X_std`` is shown as one column ``"mean ± std"`` (3 decimals);
    every other cell is shown verbatim.
    """
    with Path(path).open("r", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValueError(f"{path} is empty")
    header, body = rows[0], rows[1:]
    std_of = {i: header.index(f"{h}_std") for i, h in enumerate(header) if f"{h}_std" in header}
    drop = set(std_of.values())
    out_header = [h for i, h in enumerate(header) if i not in drop]
    out_rows = []
    for r in body:
        r = r + [""] * (len(header) - len(r))
        cells = []
        for i, c in enumerate(r[: len(header)]):
            if i in drop:
                continue
            if i in std_of:
                try:
                    mu = float(c)
                    sd = r[std_of[i]]
                    c = f"{mu:.3f} ± {float(sd):.3f}" if sd != "" else f"{mu:.3f}"
                except ValueError:
                    pass
            cells.append(c)
        out_rows.append(cells)
    return out_header, out_rows


def format_pm(mu: float, sd: float, *, scale: float = 100.0, digits: int = 1) -> str:
    """``(0.853, 0.012)`` -> ``"85.3 ± 1.2"`` (percent by default); NaN -> ``"–"``."""
    if mu is None or (isinstance(mu, float) and math.isnan(mu)):
        return "–"
    return f"{mu * scale:.{digits}f} ± {sd * scale:.{digits}f}"

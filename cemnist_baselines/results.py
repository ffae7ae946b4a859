"""The one home of the result format: schema, loading with checks, conversion of old versions, grouping by
protocol and aggregation over seeds. Used by the leaderboard, ``targets``, ``progress``, ``validate`` and the
report.

Every reader of a results folder goes through one validating loader (:func:`cemnist_baselines.validate.load_validated`,
:func:`cemnist_baselines.validate.load_valid_results`: the checks of ``cemnist-baselines validate``). Files are read with
:func:`read_regular_file`: regular files only (a FIFO, device or folder named ``*.json`` is refused without
blocking), at most :data:`MAX_RESULT_BYTES` (16 MiB), nested at most :data:`MAX_JSON_DEPTH` levels, finite
numbers only (results are written with ``allow_nan=False``: :func:`result_json_text`).

The key ``steps`` holds one record per trained task (:func:`cemnist_baselines.metrics.task_metrics`): a
"learning step" in the continual-learning literature, not an optimizer step. The code calls these records
``task_records``; the key keeps its name so that every result written so far (the committed board, its
hashes) stays readable as it is. A run's files are named by :func:`run_stem`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from cemnist_data import fileio

from .registry import METHOD_ORDER

RESULT_SCHEMA = "cemnist-baselines-result/2"
SCHEMA_PREFIX = "cemnist-baselines-result/"
# Older schemas and why they cannot be converted (readers refuse them with this reason).
UNCONVERTIBLE: dict[str, str] = {
    "cemnist-baselines-result/1": (
        "schema 1 scored step t on task t's growing test split (not one fixed pool) and stored the confusion in "
        "that step's label view only, so its numbers cannot be recomputed on the fixed pool; rerun the run with "
        "this version of cemnist-baselines"),
}
REQUIRED_KEYS = ("schema", "method", "seed", "setting", "mode", "preset", "precision", "config", "protocol",
                 "dataset", "evaluation", "env", "tasks", "steps", "R", "final", "wall_time_per_task_s")
MAX_RESULT_BYTES = 16 * 1024 * 1024
"""Largest result JSON a reader accepts (a result of the published board is about 19 kB)."""
MAX_JSON_DEPTH = 32
"""Deepest nesting of lists and objects a result may have (a real result has 6 levels)."""
# Methods in this order first (lower bound, distillation, MiB, upper bound), others alphabetically.


class ResultError(ValueError):
    """A result file that cannot be used; the message names the file and what is wrong."""


def method_sort_key(method: str) -> tuple[int, str]:
    """Sort key putting known methods in a fixed order."""
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def read_regular_file(path: str | os.PathLike[str], *, what: str, max_bytes: int = MAX_RESULT_BYTES) -> bytes:
    """The bytes of ``path`` read with :func:`cemnist_data.fileio.read_regular_file` (regular files of at most
    ``max_bytes`` only: a FIFO, device, socket or folder, also behind a symlink, is refused without blocking on it,
    and so is a larger or growing file). Errors are :class:`ResultError` naming the file, the ``what`` and the fix."""
    p = Path(path)
    try:
        return fileio.read_regular_file(p, max_bytes=max_bytes)
    except fileio.RefusedFileError as e:
        raise ResultError(f"{e}, or, if it is not a {what}, move it out of the folder") from e
    except OSError as e:
        raise ResultError(f"{p}: cannot read the {what} ({e.strerror or e})") from e


def read_json_file(path: str | os.PathLike[str], *, what: str = "result JSON") -> Any:
    """Parse a JSON file read with :func:`read_regular_file`; damaged or too deeply nested JSON is a
    :class:`ResultError` naming the file (never a bare ``RecursionError``)."""
    p = Path(path)
    data = read_regular_file(p, what=what)
    try:
        return json.loads(data.decode("utf-8"))
    except json.JSONDecodeError as e:
        raise ResultError(f"{p}: damaged {what} ({e.msg} at line {e.lineno}); delete it and rerun the run "
                          f"(or restore it from version control)") from e
    except RecursionError:
        raise ResultError(f"{p}: damaged {what} (nested too deeply to read; a result has at most "
                          f"{MAX_JSON_DEPTH} levels); delete or move the file") from None
    except (UnicodeDecodeError, ValueError) as e:  # not UTF-8, an integer of more than 4300 digits, ...
        raise ResultError(f"{p}: damaged {what} ({e}); delete it and rerun the run (or restore it from version "
                          f"control)") from e


def json_problems(obj: Any, *, max_depth: int = MAX_JSON_DEPTH) -> tuple[list[str], bool]:
    """(fields holding a non-finite number, e.g. ``final.future_bg.miou_bg = nan``; whether ``obj`` nests
    deeper than ``max_depth``), found without recursion."""
    bad: list[str] = []
    stack: list[tuple[str, Any, int]] = [("", obj, 0)]
    while stack:
        where, v, depth = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            bad.append(f"{where or '(top)'} = {v!r}")
        elif isinstance(v, (dict, list)):
            if depth >= max_depth:
                return bad, True
            if isinstance(v, dict):
                stack += [(f"{where}.{k}" if where else str(k), x, depth + 1) for k, x in v.items()]
            else:
                stack += [(f"{where}[{i}]", x, depth + 1) for i, x in enumerate(v)]
    return sorted(bad), False


def result_json_text(result: Mapping[str, Any], *, name: str) -> str:
    """The JSON text of a result (``indent=1``); a non-finite number anywhere is a ValueError naming the
    field (JSON has no NaN: ``allow_nan=False``)."""
    bad, deep = json_problems(result)
    if bad or deep:
        raise ValueError(f"{name}: not written: the result holds " + (
            f"non-finite numbers ({'; '.join(bad[:5])})" if bad else f"more than {MAX_JSON_DEPTH} nested levels")
            + "; a method's protocol_values() and metrics must be finite numbers: fix the method and rerun "
              "(finished tasks are checkpointed: --resume)")
    return json.dumps(result, indent=1, allow_nan=False) + "\n"


def is_result_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a JSON file that claims to be a run result (has a ``cemnist-baselines-result/*``
    schema) — used to tell results from other JSON files (an unreadable ``*.json``, a FIFO or a device
    counts as a result, so that it is reported instead of skipped; nothing blocks or reads without bound)."""
    try:
        d = read_json_file(path)
    except ResultError:
        return True
    return isinstance(d, dict) and str(d.get("schema", "")).startswith(SCHEMA_PREFIX)


def check_result(d: Any, *, name: str = "result") -> dict[str, Any]:
    """Structural checks of a parsed result (schema version, keys, per-task record shapes); returns ``d``."""
    if not isinstance(d, dict):
        raise ResultError(f"{name}: a result must be a JSON object, got {type(d).__name__}")
    bad, deep = json_problems(d)
    if deep:
        raise ResultError(f"{name}: result nests deeper than {MAX_JSON_DEPTH} levels (not a result); delete or "
                          f"move the file")
    if bad:
        raise ResultError(f"{name}: result holds non-finite numbers ({'; '.join(bad[:5])}"
                          f"{f' and {len(bad) - 5} more' if len(bad) > 5 else ''}); a result has finite numbers "
                          f"only: delete it and rerun the run")
    schema = d.get("schema")
    if schema in UNCONVERTIBLE:
        raise ResultError(f"{name}: result schema {schema!r} is not supported: {UNCONVERTIBLE[schema]}")
    if schema != RESULT_SCHEMA:
        raise ResultError(f"{name}: unknown result schema {schema!r}; this version reads {RESULT_SCHEMA!r}")
    missing = [k for k in REQUIRED_KEYS if k not in d]
    if missing:
        raise ResultError(f"{name}: result is missing the keys {missing} (written by another tool or truncated?)")
    records = d["steps"]
    if not isinstance(records, list) or not records:
        raise ResultError(f"{name}: result has no steps")
    for i, s in enumerate(records):
        conf = s.get("confusion") if isinstance(s, dict) else None
        if not (isinstance(conf, list) and len(conf) == 11 and all(isinstance(r, list) and len(r) == 11 for r in conf)):
            raise ResultError(f"{name}: steps[{i}].confusion must be an 11x11 list of counts")
        iou = s.get("iou_per_label")
        if not isinstance(iou, list) or len(iou) != 11:
            raise ResultError(f"{name}: steps[{i}].iou_per_label must be a list of 11 values")
    walls = d["wall_time_per_task_s"]
    if not (isinstance(walls, list) and all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0
                                            for w in walls)):
        raise ResultError(f"{name}: wall_time_per_task_s must be a list of seconds >= 0, got {walls!r}")
    if not (isinstance(d["env"], dict) and isinstance(d["env"].get("device"), str)):
        raise ResultError(f"{name}: env must be an object naming the device type (env.device)")
    return d


def load_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and check the structure of one result JSON (:func:`check_result`: schema, shapes, finite numbers;
    the full checks of ``validate`` are :func:`cemnist_baselines.validate.load_validated`'s); adds ``_path``. Errors name the file."""
    p = Path(path)
    d = read_json_file(p)
    check_result(d, name=str(p))
    d["_path"] = str(p)
    return d


def load_results(results_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every result in ``results_dir`` with structural checks only (:func:`load_result`): for results built by
    the caller (tests, conversions). Readers of results folders use :func:`cemnist_baselines.validate.load_valid_results`."""
    root = results_folder(results_dir)
    return [load_result(p) for p in sorted(root.glob("*.json")) if is_result_file(p)]


def results_folder(results_dir: str | os.PathLike[str]) -> Path:
    """``results_dir`` as a Path; NoSuchFolderError (exit status 2 in the CLIs) when it is not a folder."""
    root = Path(results_dir)
    if not root.is_dir():
        from cemnist_data.workdirs import NoSuchFolderError

        raise NoSuchFolderError(f"results folder {root} does not exist (or is not a folder)")
    return root


def protocol_key(r: Mapping[str, Any]) -> dict[str, Any]:
    """What a leaderboard row is keyed by: method, setting, mode, the protocol fields, method-specific
    protocol values, dataset version and content hashes, and the device type. Speed options never enter."""
    return {"method": r["method"], "setting": r["setting"], "mode": r["mode"], "protocol": r["protocol"],
            "method_protocol": r.get("method_protocol", {}), "dataset": r["dataset"],
            "device": r["env"].get("device")}


def protocol_id(r: Mapping[str, Any]) -> str:
    """Short hash of the run's protocol (without method and device): equal for every method of one board."""
    k = protocol_key(r)
    blob = json.dumps({"setting": k["setting"], "mode": k["mode"], "protocol": k["protocol"],
                       "dataset": k["dataset"]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def mode_sort_key(mode: str) -> tuple[int, str]:
    """Overlap (the headline setting of the board) before disjoint, then any other mode by name."""
    return ({"overlap": 0, "disjoint": 1}.get(mode, 2), mode)


def group_runs(results: Iterable[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Runs grouped by :func:`protocol_key` (each group sorted by seed); duplicate seeds are a ValueError."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in results:
        groups.setdefault(json.dumps(protocol_key(r), sort_keys=True), []).append(r)
    out = []
    for runs in groups.values():
        runs = sorted(runs, key=lambda r: int(r["seed"]))
        seeds = [int(r["seed"]) for r in runs]
        if len(set(seeds)) != len(seeds):
            files = [r.get("_path", "?") for r in runs]
            raise ValueError(f"duplicate seeds {seeds} for method {runs[0]['method']!r} with one protocol: {files}")
        out.append(runs)
    out.sort(key=lambda g: (g[0]["setting"], mode_sort_key(g[0]["mode"]), protocol_id(g[0]),
                            str(g[0]["env"].get("device")), method_sort_key(g[0]["method"])))
    return out


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n-1) of the non-None values; std is None for n < 2."""
    v = [float(x) for x in values if x is not None]
    if not v:
        return None, None
    m = sum(v) / len(v)
    if len(v) < 2:
        return m, None
    return m, math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))


def final_value(r: Mapping[str, Any], view: str, key: str) -> Any:
    """``r["final"][view][key]`` (None when absent)."""
    return r["final"].get(view, {}).get(key)


# ----------------------------------------------------------------------------- views for plots and the report
def plot_groups(runs: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str, str], dict[str, list[Mapping[str, Any]]]]:
    """``{(setting, mode, protocol_id, device): {method: [runs by seed]}}``, methods in display order: one
    plot per protocol (runs of different protocols are never drawn as one curve)."""
    tmp: dict[tuple[str, str, str, str], dict[str, list[Mapping[str, Any]]]] = {}
    for r in runs:
        k = (str(r["setting"]), str(r["mode"]), protocol_id(r), str(r["env"].get("device")))
        tmp.setdefault(k, {}).setdefault(str(r["method"]), []).append(r)
    return {k: {m: sorted(v[m], key=lambda r: int(r["seed"])) for m in sorted(v, key=method_sort_key)}
            for k, v in sorted(tmp.items())}


def single_group(runs: Sequence[Mapping[str, Any]]) -> tuple[str, str, str, str]:
    """Check all runs share one plot group and task list; return the group key."""
    if len(runs) == 0:
        raise ValueError("no runs given")
    keys = set(plot_groups(runs))
    if len(keys) != 1:
        raise ValueError(f"runs mix several (setting, mode, protocol, device) groups {sorted(keys)}; plot one at a time")
    if len({json.dumps(r["tasks"]) for r in runs}) != 1:
        raise ValueError("runs of one group disagree on the task list")
    return next(iter(keys))


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def metric_curves(runs: Sequence[Mapping[str, Any]], *, metric: str = "miou_bg") -> dict[str, Any]:
    """Per method: (mean [T], std [T], n [T]) of a per-task metric (headline view) after each task."""
    import numpy as np

    single_group(runs)
    n_tasks = len(runs[0]["tasks"])
    out: dict[str, Any] = {}
    for method, rs in next(iter(plot_groups(runs).values())).items():
        mean, std, n = np.full(n_tasks, np.nan), np.full(n_tasks, np.nan), np.zeros(n_tasks, dtype=np.int64)
        for t in range(n_tasks):
            vals = [s[metric] for r in rs for s in r["steps"] if int(s["task"]) == t and s.get(metric) is not None]
            if vals:
                mean[t] = float(np.mean(vals))
                std[t] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
                n[t] = len(vals)
        out[method] = Curve(method, mean, std, n)
    return out


class Curve:
    """Per-method metric after each task: mean and std over seeds, number of seeds per task."""

    def __init__(self, method: str, mean: Any, std: Any, n: Any) -> None:
        self.method, self.mean, self.std, self.n = method, mean, std, n


def class_iou_matrix(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per method: IoU per label (rows 0..10 = bg, digits 0..9) × task (headline view), mean over seeds."""
    import numpy as np

    single_group(runs)
    n_tasks = len(runs[0]["tasks"])
    out = {}
    for method, rs in next(iter(plot_groups(runs).values())).items():
        acc = np.full((len(rs), 11, n_tasks), np.nan)
        for i, r in enumerate(rs):
            for s in r["steps"]:
                t = int(s["task"])
                if 0 <= t < n_tasks:
                    acc[i, :, t] = [_nan(v) for v in s["iou_per_label"]]
        with np.errstate(invalid="ignore"):
            cnt = (~np.isnan(acc)).sum(axis=0)
            out[method] = np.where(cnt > 0, np.nansum(acc, axis=0) / np.maximum(cnt, 1), np.nan)
    return out


def format_pm(mu: float | None, sd: float | None, *, scale: float = 100.0, digits: int = 1) -> str:
    """``(0.853, 0.012)`` -> ``"85.3 ± 1.2"`` (percent by default); None/NaN -> ``"–"``."""
    if mu is None or (isinstance(mu, float) and math.isnan(mu)):
        return "–"
    if sd is None or (isinstance(sd, float) and math.isnan(sd)):
        return f"{mu * scale:.{digits}f}"
    return f"{mu * scale:.{digits}f} ± {sd * scale:.{digits}f}"


def run_id(result: dict[str, Any]) -> str:
    """Identity of a run: hash of method, seed, resolved config, dataset hashes and code version. A trace is
    bound to the result JSON with the same id."""
    blob = json.dumps({k: result.get(k) for k in ("method", "seed", "config", "dataset", "package_version",
                                                   "git_commit")}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_stem(method: str, setting: str, mode: str, seed: int) -> str:
    """File stem of a run's result, trace and checkpoint folder: ``{method}-{setting}-{mode}-seed{seed}``."""
    return f"{method}-{setting}-{mode}-seed{seed}"


def make_result(*, method: str, seed: int, preset: str, cfg: Any, method_protocol: dict[str, Any],
                method_source: str, dataset: dict[str, Any], evaluation: dict[str, Any], git_commit: str | None,
                env: dict[str, Any], tasks: list[list[int]], wall_time_per_task_s: list[float],
                task_records: list[dict[str, Any]], seen_upto: list[int], shared_task0: bool = False,
                joint: bool = False) -> dict[str, Any]:
    """The result record of one run (schema :data:`RESULT_SCHEMA`; docs/PROTOCOL.md, "Result files"): the
    run's identity and config (``cfg``, a :class:`~cemnist_baselines.config.TrainConfig`), the dataset and
    evaluation pool it was scored on (``evaluation``: split, pool_configs, num_images, num_pixels,
    pool_num_images; the views are added here), the machine, one record per trained task (``task_records``,
    each with its pool confusion; stored under the key ``steps``), the matrices ``R`` and the ``final`` metrics
    summarised from them (:func:`cemnist_baselines.metrics.summarize`; ``seen_upto``: the last task each record
    has seen) and the
    :func:`run_id`. What the trainer writes, and what tests build synthetic records with."""
    from . import __version__
    from .metrics import HEADLINE_VIEW, VIEWS, summarize

    summ = summarize(task_records, tasks, seen_upto=seen_upto)
    result: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "method": method, "seed": seed, "setting": cfg.setting, "mode": cfg.mode, "preset": preset,
        "precision": cfg.precision,
        "config": cfg.to_dict(),
        "protocol": cfg.protocol(),
        "method_protocol": method_protocol,
        "method_source": method_source,
        "dataset": dataset,
        "evaluation": {**evaluation, "views": list(VIEWS), "headline_view": HEADLINE_VIEW},
        "package_version": __version__,
        "git_commit": git_commit,
        "env": env,
        "class_order": [d for ts in tasks for d in ts],
        "tasks": tasks,
        "wall_time_per_task_s": wall_time_per_task_s,
        "steps": task_records,  # the schema's key: one record per task (module docstring)
        "R": summ["R"],
        "final": summ["final"],
        "shared_task0": shared_task0,
        "joint": joint,
    }
    result["run_id"] = run_id(result)
    return result

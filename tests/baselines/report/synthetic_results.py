"""SYNTHETIC result folders for the report's picture tests only.

Nothing here is a benchmark result: the numbers are made up to look plausible (naive forgets,
kd forgets less, mib least) so that plots and reports have something to draw. The records are built by
:func:`cemnist_baselines.results.make_result`, the function the trainer writes its results with, so they follow
the result schema (docs/PROTOCOL.md, "Result files"). Every reader of a results folder validates what it reads
(``cemnist_baselines.validate.load_valid_results``), so the made-up runs are consistent with the shipped
release: its dataset hashes and evaluation pool size (the background cell of each confusion takes the rest of
the pool's pixels), the built-in methods' protocol values and sources, a config as a CPU run records it.
"""
from __future__ import annotations

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


POOL_PIXELS = 5000 * 60 * 60  # the shipped release's test pool: 5,000 images of 60x60


def synthetic_confusion(method: str, seed: int, t: int, progress: float = 1.0) -> np.ndarray:
    """11x11 confusion after (a fraction ``progress`` of) task ``t``; rows = true label; sums to the pool's
    pixel count."""
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
    conf[0, 0] += POOL_PIXELS - int(conf.sum())
    return conf


def synthetic_run(method: str, seed: int) -> dict[str, Any]:
    """A result record (:func:`~cemnist_baselines.results.make_result`, as the trainer calls it) whose every
    metric is computed by the real metric code from synthetic confusions."""
    import torch

    from cemnist_baselines.artifacts import env_info
    from cemnist_baselines.config import TrainConfig
    from cemnist_baselines.data import content_hashes, dataset_info, eval_pool_configs
    from cemnist_baselines.metrics import task_metrics
    from cemnist_baselines.registry import METHODS as REGISTRY, method_source
    from cemnist_baselines.results import make_result

    info = dataset_info(path="cemnist")  # the shipped release manifest (no download)
    pool = eval_pool_configs("overlap", len(TASKS), "test")
    hashes = content_hashes(info, [(f"overlap-task{t}", "train") for t in range(len(TASKS))] + [(c, "test") for c in pool])
    n_img = sum(int(info["configs"][c]["test"]["num_rows"]) for c in pool)
    assert n_img * 60 * 60 == POOL_PIXELS

    records = []
    for t in range(len(TASKS)):
        seen = [0] + [d + 1 for ts in TASKS[: t + 1] for d in ts]
        entry: dict[str, Any] = {"task": t}
        entry.update(task_metrics(torch.as_tensor(synthetic_confusion(method, seed, t)), seen))
        entry["classes_seen"] = [d for ts in TASKS[: t + 1] for d in ts]
        entry["epochs"] = EPOCHS_PER_TASK
        records.append(entry)
    cfg = TrainConfig(epochs=EPOCHS_PER_TASK, lr=0.01).resolved("cpu")
    meth = REGISTRY[method]
    return make_result(
        method=method, seed=seed, preset="synthetic-test", cfg=cfg, method_protocol=meth.protocol_values(),
        method_source=method_source(meth), dataset={"version": info["version"], "content_sha256": hashes},
        evaluation={"split": "test", "pool_configs": pool, "num_images": n_img, "num_pixels": POOL_PIXELS,
                    "pool_num_images": n_img},
        git_commit=None, env=env_info(torch.device("cpu")), tasks=TASKS,
        wall_time_per_task_s=[1.0] * len(TASKS), task_records=records, seen_upto=list(range(len(TASKS))),
        shared_task0=False, joint=meth.joint)


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


def synthetic_trace(method: str, seed: int, path: Path, result_name: str, run_id: str) -> None:
    """A trace file as ``--trace`` writes it (docs/INTERFACES.md, "Run artifacts") for the synthetic run."""
    import torch

    from cemnist_baselines.artifacts import atomic_save_safetensors

    confs, ep_task, ep_idx, ep_loss = [], [], [], []
    for t in range(len(TASKS)):
        for e in range(1, EPOCHS_PER_TASK + 1):
            confs.append(synthetic_confusion(method, seed, t, progress=e / EPOCHS_PER_TASK))
            ep_task.append(t)
            ep_idx.append(e)
            ep_loss.append(1.0 / e)
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
        "epoch_loss": np.array(ep_loss, np.float32),
        "panel_images": img,
        "panel_full_masks": full,
        "panel_pred": np.stack(preds).astype(np.uint8),
    }
    atomic_save_safetensors(path, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()},
                            {"result": result_name, "method": method, "seed": str(seed), "run_id": run_id})


def make_results_dir(root: Path, *, traces: bool = True) -> Path:
    """Write 3 methods x 2 seeds of SYNTHETIC result JSONs (+ traces for seed 0) into ``root``, as the trainer
    writes them (:func:`~cemnist_baselines.results.result_json_text`)."""
    from cemnist_baselines.results import result_json_text
    from cemnist_baselines.results import run_stem

    root.mkdir(parents=True, exist_ok=True)
    for m in METHODS:
        for s in SEEDS:
            r = synthetic_run(m, s)
            stem = run_stem(m, r["setting"], r["mode"], s)
            (root / f"{stem}.json").write_text(result_json_text(r, name=stem))
            if traces and s == 0:
                synthetic_trace(m, s, root / f"{stem}.trace.safetensors", f"{stem}.json", r["run_id"])
    return root

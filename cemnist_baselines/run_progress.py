"""What interrupted or running runs have finished so far, read from their per-task checkpoints."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .checkpoints import load_checkpoint, task_checkpoints


def run_progress(results_dir: str | Path) -> list[dict[str, Any]]:
    """One entry per run folder under ``results_dir/checkpoints`` (the shared task-0 folder excluded):
    ``stem``, ``finished`` (its result JSON exists), ``tasks_done`` and the task records of the latest
    checkpoint (``task_records``: ``task``, ``miou_bg``, ``miou``, ``iou_per_label``), ``wall_time_per_task_s``."""
    root = Path(results_dir)
    ckroot = root / "checkpoints"
    if not root.is_dir():
        raise FileNotFoundError(f"results folder {root} does not exist")
    out: list[dict[str, Any]] = []
    for d in sorted(p for p in ckroot.glob("*") if p.is_dir() and p.name != "_shared"):
        found = task_checkpoints(d)
        if not found:
            continue
        _, _, config, prog = load_checkpoint(found[max(found)])  # damaged: ValueError naming the file
        out.append({
            "stem": d.name,
            "finished": _finished(root / f"{d.name}.json", config),
            "tasks_done": len(prog["steps"]),  # the checkpoint's records, one per task (checkpoints module)
            "epochs_per_task": config["epochs"],
            "task_records": [{k: s[k] for k in ("task", "miou_bg", "miou", "iou_per_label")} for s in prog["steps"]],
            "wall_time_per_task_s": prog["wall_time_per_task_s"],
        })
    return out


def _finished(path: Path, config: dict[str, Any]) -> bool | str:
    """True when ``path`` is a result of the checkpoint's config that passes ``validate`` (the one validating
    loader, :func:`~cemnist_baselines.validate.load_validated`); a string saying why not otherwise."""
    from .validate import load_validated, refusal_message

    if not os.path.lexists(path):
        return False
    ok, refused = load_validated([path])
    if refused:
        return f"result JSON unusable: {refusal_message(refused)}"
    r = ok[0]
    from .config import complete_config

    same = complete_config(r.get("config", {})) == complete_config(config)
    return True if same else "result JSON is of another config (stale)"


def format_progress(entries: list[dict[str, Any]]) -> str:
    """Plain-text table: one line per run and finished task (mIoU with background, digits-only mIoU, wall time)."""
    if not entries:
        return "no run checkpoints found"
    lines = []
    for e in entries:
        state = "finished" if e["finished"] is True else ("unfinished" if e["finished"] is False else e["finished"])
        lines.append(f"{e['stem']}: {e['tasks_done']} task(s) done, {state}")
        records = e["task_records"]
        for s, w in zip(records, e["wall_time_per_task_s"] + [None] * len(records)):
            iou = " ".join("-" if v is None else f"{v:.3f}" for v in s["iou_per_label"])
            wall = "" if w is None else f"  ({w:.0f} s)"
            lines.append(f"  after task {s['task']}: mIoU(bg) {s['miou_bg']:.4f}  mIoU {s['miou']:.4f}  "
                         f"IoU per label [{iou}]{wall}")
    return "\n".join(lines)

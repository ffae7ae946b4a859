"""The only place where the baselines touch the dataset (through the pinned ``cemnist_data`` API)."""
from __future__ import annotations

from typing import Any

import torch


def _cd():  # imported lazily so that the model / metrics code works without the dataset package
    import cemnist_data

    return cemnist_data


def config_name(mode: str, task: int | None) -> str:
    """Dataset config for ``task`` in ``mode`` (``None`` = ``joint``)."""
    return "joint" if task is None else f"{mode}-task{task}"


def dataset_info(*, path: str = "cemnist", cache_dir: str | None = None) -> dict[str, Any]:
    """``cemnist_data.release_info`` (version, setting, class_order, tasks, per-config content hashes)."""
    return _cd().release_info(path, cache_dir=cache_dir)


def resolve_tasks(setting: str, class_order: tuple[int, ...] | None, info: dict[str, Any]) -> list[list[int]]:
    """Digits per task; ValueError when the setting/order is invalid or is not the release's one."""
    tasks = _cd().parse_setting(setting, class_order)  # ValueError with a precise message if malformed
    rel = [list(map(int, t)) for t in info["tasks"]]
    if tasks != rel:
        raise ValueError(
            f"setting {setting!r} with class_order {list(class_order) if class_order else None} gives tasks {tasks}, "
            f"but the dataset release {info.get('version')!r} was built for setting {info.get('setting')!r} "
            f"with tasks {rel}; build a matching release first"
        )
    return tasks


def load_task_data(
    *,
    task: int | None,
    split: str,
    mode: str,
    path: str = "cemnist",
    limit: int | None = None,
    device: torch.device | str = "cpu",
    cache_dir: str | None = None,
    mask_column: str = "mask",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, masks): uint8 [N, 60, 60] on ``device``; first ``limit`` rows; ``task=None`` = joint.

    ``mask_column="full_mask"`` gives every digit labelled (used for the trace panel)."""
    cfg = config_name(mode, task)
    images, masks = _cd().load_tensors(path, config=cfg, split=split, mode=mode, cache_dir=cache_dir,
                                       columns=("image", mask_column))
    if limit is not None:
        images, masks = images[:limit], masks[:limit]
    if images.dtype != torch.uint8 or masks.dtype != torch.uint8:
        raise TypeError(f"{cfg}/{split}: expected uint8 tensors, got {images.dtype} and {masks.dtype}")
    return images.contiguous().to(device), masks.contiguous().to(device)


def content_hashes(info: dict[str, Any], configs: list[str], splits: tuple[str, ...] = ("train", "test")) -> dict[str, str]:
    """``{"config/split": sha256}`` for the configs a run used (from ``release_info``)."""
    out: dict[str, str] = {}
    for c in configs:
        for s in splits:
            entry = info.get("configs", {}).get(c, {}).get(s)
            if entry is not None and "content_sha256" in entry:
                out[f"{c}/{s}"] = entry["content_sha256"]
    return out

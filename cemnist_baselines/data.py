"""The only place where the baselines touch the dataset (through the pinned ``cemnist_data`` API)."""
from __future__ import annotations

import functools
from typing import Any

import torch

import cemnist_data
from cemnist_data.spec import config_name




@functools.lru_cache(maxsize=48)
def _columns_cached(path: str, config: str, split: str, mode: str, cache_root: str,
                    columns: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(cemnist_data.load_tensors(path, config=config, split=split, mode=mode, cache_dir=cache_root, columns=columns))


def load_columns(path: str, *, config: str, split: str, mode: str, cache_dir: str | None,
                 columns: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
    """``cemnist_data.load_tensors``, decoded once per process and cache folder (the splits are immutable
    and verified when first loaded); every call returns fresh copies."""
    root = str(cemnist_data.cache_root(cache_dir))
    return tuple(t.clone() for t in _columns_cached(path, config, split, mode, root, tuple(columns)))


def dataset_info(*, path: str = "cemnist", cache_dir: str | None = None) -> dict[str, Any]:
    """``cemnist_data.release_info`` (version, setting, class_order, tasks, per-config content hashes)."""
    return cemnist_data.release_info(path, cache_dir=cache_dir)


def resolve_tasks(setting: str, class_order: tuple[int, ...] | None, info: dict[str, Any]) -> list[list[int]]:
    """Digits per task; ValueError when the setting/order is invalid or is not the release's one."""
    tasks = cemnist_data.parse_setting(setting, class_order)  # ValueError with a precise message if malformed
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
    images, masks = load_columns(path, config=cfg, split=split, mode=mode, cache_dir=cache_dir,
                                 columns=("image", mask_column))
    if limit is not None:
        images, masks = images[:limit], masks[:limit]
    if images.dtype != torch.uint8 or masks.dtype != torch.uint8:
        raise TypeError(f"{cfg}/{split}: expected uint8 tensors, got {images.dtype} and {masks.dtype}")
    return images.contiguous().to(device), masks.contiguous().to(device)


def _subset_index(n: int, k: int | None, *, purpose: str) -> torch.Tensor | None:
    """Sorted indices of one fixed seeded subset of ``k`` of ``n`` rows (``None`` = all rows).

    The seed is a protocol constant, not the run seed: every run sees the same images at every task."""
    if k is None or k >= n:
        return None
    import hashlib

    seed = int.from_bytes(hashlib.sha256(f"cemnist-subset/{purpose}/{n}".encode()).digest()[:8], "little") >> 1
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[:k].sort().values


def eval_pool_configs(mode: str, n_tasks: int, split: str) -> list[str]:
    """The configs whose ``split`` forms the evaluation pool: the last task's test split (= the whole test
    pool) for ``test``; every task's validation split for ``validation``."""
    if split == "test":
        return [config_name(mode, n_tasks - 1)]
    if split == "validation":
        return [config_name(mode, t) for t in range(n_tasks)]
    raise ValueError(f"evaluation split must be 'test' or 'validation', got {split!r}")


def load_eval_pool(*, mode: str, n_tasks: int, split: str, max_n: int | None, path: str = "cemnist",
                   device: torch.device | str = "cpu", cache_dir: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, full masks) of the fixed evaluation pool, optionally one fixed seeded subset of ``max_n``."""
    parts = [load_columns(path, config=c, split=split, mode=mode, cache_dir=cache_dir,
                          columns=("image", "full_mask")) for c in eval_pool_configs(mode, n_tasks, split)]
    images = torch.cat([p[0] for p in parts])
    masks = torch.cat([p[1] for p in parts])
    idx = _subset_index(images.shape[0], max_n, purpose=f"eval-{split}")
    if idx is not None:
        images, masks = images[idx], masks[idx]
    return images.contiguous().to(device), masks.contiguous().to(device)


def load_joint_train(*, mode: str, n_tasks: int, limit: int | None, path: str = "cemnist",
                     device: torch.device | str = "cpu", cache_dir: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The joint upper bound's training set for ``mode``: the union of that mode's task train splits (the first
    ``limit`` images of each, exactly the images the incremental runs see) with every class labelled."""
    xs, ys = [], []
    for t in range(n_tasks):
        x, y = load_task_data(task=t, split="train", mode=mode, path=path, limit=limit, cache_dir=cache_dir,
                              mask_column="full_mask")
        xs.append(x)
        ys.append(y)
    return torch.cat(xs).contiguous().to(device), torch.cat(ys).contiguous().to(device)


def content_hashes(info: dict[str, Any], used: list[tuple[str, str]]) -> dict[str, str]:
    """``{"config/split": sha256}`` for the (config, split) pairs a run used (from ``release_info``)."""
    out: dict[str, str] = {}
    for c, s in used:
        entry = info.get("configs", {}).get(c, {}).get(s)
        if entry is None or "content_sha256" not in entry:
            raise ValueError(f"the dataset release has no content hash for {c}/{s}")
        out[f"{c}/{s}"] = entry["content_sha256"]
    return out


def label_maps(tasks: list[list[int]], upto: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(label->channel LUT [256], channel->label [C]) for the classes seen after task ``upto``.

    Channel order = class order: digit ``tasks`` flattened at position i -> channel i+1. Unseen labels
    and 255 map to 255 (ignored)."""
    seen = [d for ts in tasks[: upto + 1] for d in ts]
    lut = torch.full((256,), 255, dtype=torch.int64)
    lut[0] = 0
    for i, d in enumerate(seen):
        lut[d + 1] = i + 1
    ch2lab = torch.tensor([0] + [d + 1 for d in seen], dtype=torch.int64)
    return lut.to(device), ch2lab.to(device)

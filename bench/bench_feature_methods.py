"""What the feature-distillation methods cost per training step, and what caching the old model saves.

One run, side by side, one thread, bf16 autocast (the v1 protocol), task 1 of 2-2 on synthetic uint8 batches
of 32: training images/s of naive, ilt with the old model's logits and encoder map cached once per task
(``Method.cached_features``, the default) and with the old model run on every batch (``--no-teacher-cache``),
and plop (six old maps, run on every batch), each as a ratio of naive's cost per image.

    python bench/bench_feature_methods.py              # about 2 minutes on an idle machine
    python bench/bench_feature_methods.py --json bench/feature_methods.json
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import time

import torch

from cemnist_baselines.artifacts import atomic_write_text, env_info
from cemnist_baselines.config import get_config
from cemnist_baselines.registry import METHODS
from cemnist_baselines.model import SimpleSegNet, grow_head
from cemnist_baselines.data import label_maps
from cemnist_baselines.inference import teacher_logits, teacher_outputs
from cemnist_baselines.optim_step import make_step, train_epoch


def train_rate(method: str, *, cache: bool, n: int, batch: int = 32, epochs: int = 2) -> float:
    """Training images/s of the trainer's step for ``method`` at task 1 (the per-task cache amortised over the
    protocol's 8 epochs)."""
    dev = torch.device("cpu")
    meth = METHODS[method]
    cfg = get_config("default", batch_size=batch).resolved("cpu")
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (n, 60, 60), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 5, (n, 60, 60), dtype=torch.uint8, generator=g)
    lut, _ = label_maps([[0, 1], [2, 3]], 1, dev)
    model = SimpleSegNet(3, generator=torch.Generator().manual_seed(0))
    old = copy.deepcopy(model).eval() if meth.uses_old_model else None
    grow_head(model, 2, generator=torch.Generator().manual_seed(1), balanced=meth.balanced_init)
    state = {"plop.thresholds": torch.full((3,), 0.5), "plop.max_entropy": torch.tensor(math.log(5))}
    t0 = time.perf_counter()
    teacher = None
    if old is not None and cache and not meth.old_model_per_batch:
        teacher = (teacher_outputs(old, x, features=meth.cached_features, batch_size=500, amp=True) if meth.features
                   else teacher_logits(old, x, batch_size=500, amp=True))
    t_cache = time.perf_counter() - t0
    step = make_step(model, None if teacher is not None else old, meth.feature_loss if meth.features else meth.loss,
                     lut, cfg=cfg, c_old=3, device=dev, total_steps=(epochs + 1) * -(-n // batch),
                     features=meth.features, state=state)
    gen = torch.Generator().manual_seed(0)
    train_epoch(step, x, y, batch_size=batch, generator=gen, teacher=teacher)  # warm-up epoch
    t0 = time.perf_counter()
    for _ in range(epochs):
        train_epoch(step, x, y, batch_size=batch, generator=gen, teacher=teacher)
    per_epoch = (time.perf_counter() - t0) / epochs
    return n / (per_epoch + t_cache / 8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=640, help="images per epoch (default 640)")
    ap.add_argument("--json", help="also write the numbers here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    variants = [("naive", True), ("ilt", True), ("ilt", False), ("plop", False)]
    rates = {f"{m}{'' if c else ' (old model per batch)'}": train_rate(m, cache=c, n=a.images) for m, c in variants}
    base = rates["naive"]
    print(f"one thread, bf16 autocast, batch 32, {a.images} images per epoch ({env_info(torch.device('cpu'))['cpu_model']})")
    for k, r in rates.items():
        print(f"  {k:32s} {r:7.1f} img/s   cost per image {base / r:4.2f}x naive")
    print(f"  ilt: caching the old model's logits and enc3 makes a step {rates['ilt'] / rates['ilt (old model per batch)']:.2f}x "
          f"faster")
    if a.json:
        atomic_write_text(a.json, json.dumps({"images_per_s": rates, "env": env_info(torch.device("cpu"))}, indent=1) + "\n")


if __name__ == "__main__":
    main()

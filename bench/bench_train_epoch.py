"""Seconds per training epoch: a seed-style loop vs the baselines' fast path, same hyperparameters.

seed-style: float32 CPU tensors through a torch DataLoader (shuffle), per-batch host->device copies, eager
fp32 model. fast path: the split resident on the device as uint8, on-device shuffling with a seeded
torch.Generator, float conversion inside the step, optional torch.compile / CUDA graphs / bf16 autocast
(the trainer's defaults for the device). Data: overlap-task0 + task1 train images of the release (5,000).

    python bench/bench_train_epoch.py --device cuda                # both methods, 5,000 images/epoch
    python bench/bench_train_epoch.py --device cpu             # CPU smoke run (about a minute)
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from cemnist_baselines.config import get_config
from cemnist_baselines.data import load_task_data
from cemnist_baselines.methods import kd_loss
from cemnist_baselines.model import SimpleSegNet, grow_head
from cemnist_baselines.trainer import label_maps, make_step, resolve_device, train_epoch


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def seed_style_epoch(model, old, loader, dev, lr_opt, kd_lambda):
    for x, y in loader:
        x, y = x.to(dev), y.to(dev)
        z = model(x)
        loss = F.cross_entropy(z, y, ignore_index=255)
        if old is not None:
            with torch.no_grad():
                t = old(x)
            loss = loss + kd_lambda * kd_loss(z, t)
        lr_opt.zero_grad()
        loss.backward()
        lr_opt.step()


def bench(method: str, images: torch.Tensor, masks: torch.Tensor, *, dev: torch.device, epochs: int, warmup: int,
          compile_: bool | None, cuda_graphs: bool, amp: bool | None) -> dict:
    cfg = get_config("default", compile=compile_, cuda_graphs=cuda_graphs, amp_bf16=amp).resolved(dev.type)
    tasks = [[0, 1], [2, 3]]
    t = 1 if method == "kd" else 0
    lut, _ = label_maps(tasks, t, torch.device("cpu"))
    base = SimpleSegNet(3, generator=torch.Generator().manual_seed(0))
    old = None
    if method == "kd":
        old = copy.deepcopy(base).eval().requires_grad_(False)
        grow_head(base, 2, generator=torch.Generator().manual_seed(1))
    out = {"method": method, "n_images": int(images.shape[0]), "batch_size": cfg.batch_size}

    # seed-style loop
    model = copy.deepcopy(base).to(dev)
    o = None if old is None else copy.deepcopy(old).to(dev)
    ds = TensorDataset(images.unsqueeze(1).float().div(255.0), lut[masks.long()])
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    times = []
    for e in range(warmup + epochs):
        _sync(dev)
        t0 = time.perf_counter()
        seed_style_epoch(model, o, loader, dev, opt, cfg.kd_lambda)
        _sync(dev)
        if e >= warmup:
            times.append(time.perf_counter() - t0)
    out["seed_style_s_per_epoch"] = statistics.median(times)

    # fast path (the trainer's step)
    model = copy.deepcopy(base).to(dev)
    o = None if old is None else copy.deepcopy(old).to(dev)
    x_dev, y_dev = images.to(dev), masks.to(dev)
    step = make_step(model, o, (lambda z, y, t_, *, c_old, kd_lambda: F.cross_entropy(z, y, ignore_index=255)
                                + (0 if t_ is None else kd_lambda * kd_loss(z, t_))),
                     lut.to(dev), cfg=cfg, c_old=3, device=dev)
    g = torch.Generator(device=dev)
    g.manual_seed(0)
    times = []
    for e in range(warmup + epochs):
        _sync(dev)
        t0 = time.perf_counter()
        losses = train_epoch(step, x_dev, y_dev, batch_size=cfg.batch_size, generator=g)
        _sync(dev)
        if e >= warmup:
            times.append(time.perf_counter() - t0)
    assert bool(torch.isfinite(losses).all())
    out["fast_s_per_epoch"] = statistics.median(times)
    out["speedup"] = out["seed_style_s_per_epoch"] / out["fast_s_per_epoch"]
    out["fast_config"] = {"compile": cfg.compile, "cuda_graphs": cfg.cuda_graphs, "amp_bf16": cfg.amp_bf16}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--method", choices=["naive", "kd", "both"], default="both")
    p.add_argument("--n-images", type=int, default=None, help="images per epoch (default 5000 on CUDA, 144 on CPU)")
    p.add_argument("--epochs", type=int, default=None, help="timed epochs (default 5 on CUDA, 1 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed epochs first (default 2 on CUDA, 1 on CPU)")
    p.add_argument("--compile", dest="compile", action="store_true", default=None)
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--cuda-graphs", action="store_true")
    p.add_argument("--no-amp", dest="amp", action="store_false", default=None)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    a = p.parse_args()
    dev = resolve_device(a.device)
    cuda = dev.type == "cuda"
    n = a.n_images or (5000 if cuda else 144)
    epochs = a.epochs or (5 if cuda else 1)
    warmup = a.warmup if a.warmup is not None else (2 if cuda else 1)
    parts = [load_task_data(task=t, split="train", mode="overlap") for t in (0, 1)]
    images = torch.cat([x for x, _ in parts])
    masks = torch.cat([y for _, y in parts])
    reps = -(-n // images.shape[0])
    images, masks = images.repeat(reps, 1, 1)[:n], masks.repeat(reps, 1, 1)[:n]
    name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    print(f"device {name} | torch {torch.__version__} | {n} images/epoch | {epochs} timed + {warmup} warm-up epochs")
    rows = []
    for m in (["naive", "kd"] if a.method == "both" else [a.method]):
        r = bench(m, images, masks, dev=dev, epochs=epochs, warmup=warmup, compile_=a.compile,
                  cuda_graphs=a.cuda_graphs, amp=a.amp)
        r["device"] = name
        rows.append(r)
        print(f"{m:>5}: seed-style {r['seed_style_s_per_epoch']:.3f} s/epoch | fast {r['fast_s_per_epoch']:.3f} s/epoch "
              f"| ratio {r['speedup']:.2f}x  ({r['fast_config']})", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

"""Seconds per training epoch: a seed-style loop vs the baselines' fast path, same hyperparameters, one run.

seed-style: float32 CPU tensors through a torch DataLoader (shuffle), per-batch host->device copies, eager
fp32 model under torch's default flags (on a GPU: TF32 convolutions, as the tutorial's code gets them). fast path: the split resident on the device as uint8, batch order from a seeded CPU
torch.Generator (moved to the device once per epoch), float conversion inside the trainer's step. Variants of
the fast path (``--variants``), each the ``default`` preset's config with a few speed fields changed:

- ``eager``: the default protocol as the leaderboard runs it: **bf16 autocast**, channels_last, not compiled;
- ``fp32``: the same in fp32 (IEEE on CUDA, no TF32: the ``long`` and ``tiny`` presets' precision);
- ``compiled``, ``graphs`` (compiled with CUDA graphs), ``nchw`` (eager, contiguous NCHW): bf16 like ``eager``;
- ``fp32-graphs``: fp32 compiled with CUDA graphs;
- ``bf16``, ``bf16-graphs``: old names of ``eager`` and ``graphs`` (kept for old command lines).

Every line prints the variant's precision. Data: overlap-task0 + task1 train images of the release (5,000).
Every line prints the seed-style time measured in the same process and the ratio.

    python bench/bench_train_epoch.py --device cuda                        # naive + kd, default fast path
    python bench/bench_train_epoch.py --device cuda --method naive --variants fp32 compiled graphs fp32-graphs
    python bench/bench_train_epoch.py --device cpu                         # CPU smoke run (about a minute)
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from cemnist_baselines.artifacts import atomic_write_text
from cemnist_baselines.backends import backend_settings
from cemnist_baselines.config import TrainConfig, get_config
from cemnist_baselines.data import load_task_data
from cemnist_baselines.losses import tutorial_kd_loss
from cemnist_baselines.model import SimpleSegNet, grow_head
from cemnist_baselines.data import label_maps
from cemnist_baselines.devices import resolve_device
from cemnist_baselines.optim_step import make_step, train_epoch


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
            loss = loss + kd_lambda * tutorial_kd_loss(z, t)
        lr_opt.zero_grad()
        loss.backward()
        lr_opt.step()


VARIANTS: dict[str, dict] = {  # overrides of the default preset (bf16 autocast, channels_last, eager)
    "eager": {},
    "fp32": {"amp_bf16": False},
    "compiled": {"compile": True},
    "graphs": {"compile": True, "cuda_graphs": True},
    "fp32-graphs": {"compile": True, "cuda_graphs": True, "amp_bf16": False},
    "nchw": {"channels_last": False},  # eager without channels_last (the default's memory format)
    "bf16": {"amp_bf16": True},        # = eager (old name)
    "bf16-graphs": {"compile": True, "cuda_graphs": True, "amp_bf16": True},  # = graphs (old name)
}


def bench(method: str, images: torch.Tensor, masks: torch.Tensor, *, dev: torch.device, epochs: int, warmup: int,
          variants: list[str]) -> list[dict]:
    """Seed-style loop once, then each fast-path variant; one row per variant (same seed-style time)."""
    cfg = get_config("default").resolved(dev.type)
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

    rows = []
    x_dev, y_dev = images.to(dev), masks.to(dev)  # the fast path's resident split, shared by the variants
    for v in variants:
        vcfg = get_config("default", **VARIANTS[v]).resolved(dev.type)
        with backend_settings(vcfg, dev):  # the trainer's flags (IEEE fp32 on CUDA) for this variant only
            rows.append(_time_variant(v, vcfg, base, old, lut, x_dev, y_dev, out, dev=dev, method=method,
                                      epochs=epochs, warmup=warmup))
    return rows


def _time_variant(v: str, vcfg: TrainConfig, base: SimpleSegNet, old: SimpleSegNet | None, lut: torch.Tensor,
                  x_dev: torch.Tensor, y_dev: torch.Tensor, out: dict, *, dev: torch.device, method: str,
                  epochs: int, warmup: int) -> dict:
    """Seconds per epoch of the fast path with config ``vcfg``: one row."""
    torch.compiler.reset()  # fresh compile caches per variant (no recompile-limit fallbacks to eager)
    model = copy.deepcopy(base).to(dev)
    o = None if old is None else copy.deepcopy(old).to(dev)
    step = make_step(model, o, (lambda z, y, t_, *, c_old, kd_lambda: F.cross_entropy(z, y, ignore_index=255)
                                + (0 if t_ is None else kd_lambda * tutorial_kd_loss(z, t_))),
                     lut.to(dev), cfg=vcfg, c_old=3, device=dev,
                     total_steps=(warmup + epochs) * -(-x_dev.shape[0] // vcfg.batch_size))
    g = torch.Generator().manual_seed(0)  # CPU: the trainer's batch order on every device
    times = []
    t_first = None
    for e in range(warmup + epochs):
        _sync(dev)
        t0 = time.perf_counter()
        losses = train_epoch(step, x_dev, y_dev, batch_size=vcfg.batch_size, generator=g)
        _sync(dev)
        if e == 0:
            t_first = time.perf_counter() - t0
        if e >= warmup:
            times.append(time.perf_counter() - t0)
    if not bool(torch.isfinite(losses).all()):
        raise FloatingPointError(f"{method}/{v}: non-finite loss in the fast path")
    row = dict(out, variant=v, precision=vcfg.precision, fast_s_per_epoch=statistics.median(times),
               first_epoch_s=t_first,
               fast_config={"compile": vcfg.compile, "cuda_graphs": vcfg.cuda_graphs, "amp_bf16": vcfg.amp_bf16,
                            "cudnn_benchmark": vcfg.cudnn_benchmark, "channels_last": vcfg.channels_last})
    row["speedup"] = row["seed_style_s_per_epoch"] / row["fast_s_per_epoch"]
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--method", choices=["naive", "kd", "both"], default="both")
    p.add_argument("--n-images", type=int, default=None, help="images per epoch (default 5000 on CUDA, 144 on CPU)")
    p.add_argument("--epochs", type=int, default=None, help="timed epochs (default 5 on CUDA, 1 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed epochs first (default 2 on CUDA, 1 on CPU)")
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["eager"],
                   help="fast-path variants to time against the seed-style loop (default: eager)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    a = p.parse_args(argv)
    try:
        dev = resolve_device(a.device)
    except (RuntimeError, ValueError) as e:  # no CUDA, no such GPU, a malformed name: one line, exit status 2
        print(f"bench_train_epoch.py: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
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
        for r in bench(m, images, masks, dev=dev, epochs=epochs, warmup=warmup, variants=a.variants):
            r["device"] = name
            rows.append(r)
            print(f"{m:>5}: seed-style {r['seed_style_s_per_epoch']:.3f} s/epoch | fast[{r['variant']}, {r['precision']}] "
                  f"{r['fast_s_per_epoch']:.3f} s/epoch | ratio {r['speedup']:.2f}x | first epoch "
                  f"{r['first_epoch_s']:.1f} s{' (incl. compile)' if r['fast_config']['compile'] else ''}  ({r['fast_config']})", flush=True)
    if a.json:
        atomic_write_text(a.json, json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

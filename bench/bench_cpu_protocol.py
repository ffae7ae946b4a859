"""How close one training step comes to this machine's attainable throughput, and how to fill 2 cores.

One run, side by side (no numbers are hard-coded):
1. the model's FLOPs per image, counted from its layers (forward; forward+backward = 3x forward, the usual
   count: each conv's backward computes input and weight gradients, 2x its forward);
2. the attainable throughput of this CPU, in fp32 and bf16: the best of the model's hot operation (a 32->32
   3x3 conv at 60x60, channels_last: forward at batch 128, forward+backward at batch 32) and a 2048 GEMM;
3. training images/s of the trainer's step (naive; kd with and without teacher caching; mib) in fp32 and
   bf16, and as a fraction of the attained peak of the same precision;
4. threads vs processes: 1 process x 2 threads against 2 concurrent processes x 1 thread, total images/s.

    python bench/bench_cpu_protocol.py                      # about 3 minutes on an idle 2-core machine
    python bench/bench_cpu_protocol.py --json bench.json    # also write the numbers
"""
from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import os
import time
from typing import Any

import torch
import torch.nn.functional as F

from cemnist_baselines.artifacts import atomic_write_text
from cemnist_baselines.config import get_config
from cemnist_baselines.registry import METHODS
from cemnist_baselines.model import SimpleSegNet, grow_head
from cemnist_baselines.data import label_maps
from cemnist_baselines.inference import teacher_logits
from cemnist_baselines.optim_step import make_step, train_epoch


def model_flops(num_classes: int = 11, width: int = 32, hw: int = 60) -> float:
    """Forward multiply-adds x 2 of SimpleSegNet for one 60x60 image, from its conv shapes."""
    m = SimpleSegNet(num_classes, width=width)
    sizes = {"enc1": hw, "enc2": hw // 2, "enc3": hw // 4, "dec1": hw // 2, "dec2": hw, "head": hw}
    total = 0.0
    for name, mod in m.named_modules():
        if isinstance(mod, torch.nn.Conv2d):
            s = sizes[name.split(".")[0]]
            total += 2.0 * mod.in_channels * mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1] * s * s
    return total


def _timeit(fn, *, min_s: float = 3.0, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_s:
        fn()
        n += 1
    return (time.perf_counter() - t0) / n


def conv_peak(bf16: bool, *, backward: bool) -> float:
    """GFLOP/s of the model's dominant layer (32->32 3x3 conv at 60x60, channels_last): forward at batch 128,
    or forward + backward (input and weight gradients) at batch 32."""
    g = torch.Generator().manual_seed(0)
    b = 32 if backward else 128
    x = torch.randn(b, 32, 60, 60, generator=g).to(memory_format=torch.channels_last).requires_grad_(backward)
    conv = torch.nn.Conv2d(32, 32, 3, padding=1).to(memory_format=torch.channels_last)

    def f():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = conv(x)
        if backward:
            y.backward(torch.ones_like(y))

    with torch.set_grad_enabled(backward):
        s = _timeit(f)
    return (3 if backward else 1) * 2.0 * 32 * 32 * 9 * 60 * 60 * b / s / 1e9


def gemm_peak(bf16: bool, n: int = 2048) -> float:
    dt = torch.bfloat16 if bf16 else torch.float32
    a, b = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
    s = _timeit(lambda: a @ b)
    return 2.0 * n ** 3 / s / 1e9


def _data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic uint8 images/labels with the release's shapes (speed does not depend on content)."""
    g = torch.Generator().manual_seed(1)
    return (torch.randint(0, 256, (n, 60, 60), dtype=torch.uint8, generator=g),
            torch.randint(0, 5, (n, 60, 60), dtype=torch.uint8, generator=g))


def train_rate(method: str, *, bf16: bool, cache: bool, n: int, batch: int, epochs: int = 2) -> float:
    """Training images/s of the trainer's step for task 1 of 2-2 (head 5 channels) on ``n`` images."""
    dev = torch.device("cpu")
    cfg = get_config("default", batch_size=batch, amp_bf16=bf16, schedule="onecycle", warmup=0.15, lr=3e-3).resolved("cpu")
    x, y = _data(n)
    lut, _ = label_maps([[0, 1], [2, 3]], 1, dev)
    model = SimpleSegNet(3, generator=torch.Generator().manual_seed(0))
    old = None
    if METHODS[method].uses_old_model:
        old = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
    grow_head(model, 2, generator=torch.Generator().manual_seed(1), balanced=METHODS[method].balanced_init)
    t0 = time.perf_counter()
    teacher = teacher_logits(old, x, batch_size=500, amp=bf16) if (old is not None and cache) else None
    t_cache = time.perf_counter() - t0
    step = make_step(model, None if teacher is not None else old, METHODS[method].loss, lut, cfg=cfg, c_old=3,
                     device=dev, total_steps=(epochs + 1) * -(-n // batch))
    gen = torch.Generator().manual_seed(0)
    train_epoch(step, x, y, batch_size=batch, generator=gen, teacher=teacher)  # warm-up epoch
    t0 = time.perf_counter()
    for _ in range(epochs):
        train_epoch(step, x, y, batch_size=batch, generator=gen, teacher=teacher)
    per_epoch = (time.perf_counter() - t0) / epochs
    return n / (per_epoch + t_cache / 8)  # the cache is computed once per task: amortised over 8 epochs


def _proc(threads: int, n: int, batch: int, q: Any) -> None:
    torch.set_num_threads(threads)
    q.put(train_rate("naive", bf16=True, cache=True, n=n, batch=batch))


def concurrent_rate(procs: int, threads: int, n: int, batch: int) -> float:
    """Total naive bf16 images/s of ``procs`` concurrent processes with ``threads`` threads each."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    ps = [ctx.Process(target=_proc, args=(threads, n, batch, q)) for _ in range(procs)]
    for p in ps:
        p.start()
    rates = [q.get() for _ in ps]
    for p in ps:
        p.join()
    return sum(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-images", type=int, default=640)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    threads = torch.get_num_threads()
    out: dict[str, Any] = {"threads": threads, "cpu_count": os.cpu_count(), "torch": torch.__version__,
                           "n_images": a.n_images, "batch": a.batch}
    fwd = model_flops()
    out["gflop_per_image_forward"] = fwd / 1e9
    out["gflop_per_image_train"] = 3 * fwd / 1e9
    print(f"model: {fwd / 1e9:.3f} GFLOP forward per image, {3 * fwd / 1e9:.3f} forward+backward; {threads} threads")
    for prec, bf in (("fp32", False), ("bf16", True)):
        out[f"conv_fwd_{prec}"] = conv_peak(bf, backward=False)
        out[f"conv_train_{prec}"] = conv_peak(bf, backward=True)
        out[f"gemm_{prec}"] = gemm_peak(bf)
        out[f"peak_{prec}"] = max(out[f"conv_fwd_{prec}"], out[f"conv_train_{prec}"], out[f"gemm_{prec}"])
        print(f"attainable {prec}: conv 32->32 3x3 forward {out[f'conv_fwd_{prec}']:.0f}, forward+backward "
              f"{out[f'conv_train_{prec}']:.0f}, GEMM 2048 {out[f'gemm_{prec}']:.0f} GFLOP/s -> peak "
              f"{out[f'peak_{prec}']:.0f}")
    for method, cache in (("naive", True), ("kd", False), ("kd", True), ("mib", True)):
        for prec, bf in (("fp32", False), ("bf16", True)):
            r = train_rate(method, bf16=bf, cache=cache, n=a.n_images, batch=a.batch)
            frac = r * 3 * fwd / 1e9 / out[f"peak_{prec}"]
            key = f"{method}{'' if method == 'naive' else ('+cache' if cache else '-nocache')}_{prec}"
            out[f"rate_{key}"] = r
            out[f"frac_{key}"] = frac
            print(f"train {key:>16}: {r:6.1f} img/s = {r * 3 * fwd / 1e9:5.0f} GFLOP/s = {frac:.0%} of the {prec} "
                  f"peak")
    print(f"kd teacher caching: {out['rate_kd+cache_bf16'] / out['rate_kd-nocache_bf16']:.2f}x (bf16), "
          f"{out['rate_kd+cache_fp32'] / out['rate_kd-nocache_fp32']:.2f}x (fp32); kd+cache / naive "
          f"{out['rate_kd+cache_bf16'] / out['rate_naive_bf16']:.2f} (bf16)")
    print(f"bf16 / fp32 (naive): {out['rate_naive_bf16'] / out['rate_naive_fp32']:.2f}x")
    mem = 2500 * 9 * 60 * 60
    print(f"teacher cache memory at the last task (2,500 images, 9 old channels): {mem * 2 / 1e6:.0f} MB bf16, "
          f"{mem * 4 / 1e6:.0f} MB fp32")
    if (os.cpu_count() or 1) >= 2:
        one = concurrent_rate(1, 2, a.n_images, a.batch)
        two = concurrent_rate(2, 1, a.n_images, a.batch)
        out["rate_1proc_2threads"], out["rate_2procs_1thread"] = one, two
        print(f"whole machine, naive bf16: 1 process x 2 threads {one:.1f} img/s, 2 processes x 1 thread "
              f"{two:.1f} img/s total ({two / one:.2f}x)")
    if a.json:
        atomic_write_text(a.json, json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Warm-cache load of one task to uint8 torch tensors, against decoding row by row with Pillow.

    python bench/bench_load.py [--task 2]

Builds the cache first if needed (not timed). Prints seconds for load_dataset(...) + to_tensors on all
three splits, the same rows decoded through `ds[i]["image"]` (datasets + Pillow, row by row), and the ratio.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from cemnist_data import load_dataset, resolve_release, to_tensors  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    resolve_release("cemnist", progress=True)
    load_dataset("cemnist", task=args.task)  # warm the Arrow cache
    fast = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        dd = load_dataset("cemnist", task=args.task)
        tensors = {s: to_tensors(dd[s]) for s in dd}
        fast.append(time.perf_counter() - t0)
    n = sum(t[0].shape[0] for t in tensors.values())
    t0 = time.perf_counter()
    dd = load_dataset("cemnist", task=args.task)
    slow = {s: (np.stack([np.asarray(r["image"]) for r in dd[s]]), np.stack([np.asarray(r["mask"]) for r in dd[s]])) for s in dd}
    slow_t = time.perf_counter() - t0
    assert all((slow[s][0] == tensors[s][0].numpy()).all() for s in dd)
    print(f"load_dataset + to_tensors (warm, {n} rows, 3 splits): {min(fast):.3f} s (best of {args.repeats}); target <= 0.5 s")
    print(f"row-by-row datasets/Pillow decoding                : {slow_t:.3f} s; ratio {slow_t / min(fast):.1f}x")


if __name__ == "__main__":
    main()

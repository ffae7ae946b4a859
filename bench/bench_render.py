#!/usr/bin/env python
"""Raw rendering speed (images, full masks, provenance) against a per-image reference loop.

    python bench/bench_render.py [--n 20000] [--ref-n 1000]

The reference is the seed tutorial's style of generator: one Python iteration per image, a float64
per-class target map [10, 60, 60] per image, NumPy's Generator for sampling. Both run in this process
on one thread; the script prints images/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from cemnist_data.mnist import load_mnist  # noqa: E402
from cemnist_data.scenario import pool_stream, stream_source, train_stream  # noqa: E402
from cemnist_data.spec import CemnistSpec  # noqa: E402


def reference_render(n: int, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Straightforward per-image loop; returns images, masks and the bytes of one image's target maps."""
    rng = np.random.default_rng(seed)
    out_img = np.zeros((n, 60, 60), np.uint8)
    out_mask = np.zeros((n, 60, 60), np.uint8)
    target_bytes = 0
    for i in range(n):
        k = rng.integers(2, 5)
        boxes: list[tuple[int, int]] = []
        per_class = np.zeros((10, 60, 60), dtype=np.float64)
        canvas = np.zeros((60, 60), dtype=np.float64)
        while len(boxes) < k:
            r, c = rng.integers(0, 33, size=2)
            ok = True
            for (r2, c2) in boxes:
                inter = max(0, 28 - abs(r - r2)) * max(0, 28 - abs(c - c2))
                if inter / (2 * 784 - inter) > 0.25:
                    ok = False
                    break
            if not ok:
                continue
            boxes.append((r, c))
            j = rng.integers(0, len(images))
            d = images[j].astype(np.float64)
            per_class[labels[j], r : r + 28, c : c + 28] += d
            canvas[r : r + 28, c : c + 28] += d
        clipped = np.minimum(per_class, 255)
        out_mask[i] = np.where(clipped.max(0) > 0, clipped.argmax(0) + 1, 0)
        out_img[i] = np.minimum(canvas, 255).astype(np.uint8)
        target_bytes = per_class.nbytes
    return out_img, out_mask, target_bytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="images for CEMNIST's renderer")
    ap.add_argument("--ref-n", type=int, default=1000, help="images for the reference loop")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    mnist = load_mnist()
    spec = CemnistSpec(test_pool=args.n, train_per_task=args.n)
    sources = stream_source(spec, mnist)

    def best_rate(fn, n: int) -> float:
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return n / min(times)

    ref_rate = best_rate(lambda: reference_render(args.ref_n, mnist.train_images[:50000], mnist.train_labels[:50000]), args.ref_n)
    _, _, ref_bytes = reference_render(1, mnist.train_images, mnist.train_labels)
    pool = pool_stream(spec)
    pool_rate = best_rate(lambda: pool.render(spec, sources, 0, args.n), args.n)
    train = train_stream(spec, mode="overlap", task=2, split="train")
    train_rate = best_rate(lambda: train.render(spec, sources, 0, args.n), args.n)
    r = pool.render(spec, sources, 0, 100)
    ours_bytes = (r.images.nbytes + r.full_masks.nbytes) // 100
    print(f"reference per-image loop : {ref_rate:10,.0f} images/s  ({ref_bytes / 1e3:.0f} KB of float64 target maps per image)")
    print(f"cemnist pool stream      : {pool_rate:10,.0f} images/s  ratio {pool_rate / ref_rate:6.1f}x  (no rejection)")
    print(f"cemnist train stream     : {train_rate:10,.0f} images/s  ratio {train_rate / ref_rate:6.1f}x  (task 2, overlap: ~52% of draws rejected)")
    print(f"output per image: {ours_bytes} bytes (uint8 image + label map); target >= 50,000 images/s on one core")


if __name__ == "__main__":
    main()

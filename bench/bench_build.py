#!/usr/bin/env python
"""Wall time and peak memory of building the whole v1 release (all configs, parquet, card, manifest).

    python bench/bench_build.py [--workers 2]

Builds into a temporary folder in a child process (so peak RSS is the build's own), once with PNG
encoding on 1 thread and once on --workers threads, and prints both and the ratio. With --scale S it
also builds a release S times larger (every size multiplied) to show that peak memory does not grow
with the release size (rendering, encoding and writing go chunk by chunk).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time
from cemnist_data.release import build_release
from cemnist_data.spec import CemnistSpec
s = int(sys.argv[3])
spec = CemnistSpec(train_per_task=2500 * s, validation_per_task=500 * s, test_pool=5000 * s)
t0 = time.perf_counter()
build_release(sys.argv[1], spec=spec, workers=int(sys.argv[2]), progress=False)
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(workers: int, scale: int = 1) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", CHILD, f"{d}/rel", str(workers), str(scale)],
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale", type=int, default=0, help="also build a release this many times larger")
    args = ap.parse_args()
    one = run(1)
    many = run(args.workers)
    print(f"build, 1 encoding thread : {one['seconds']:6.2f} s wall, peak RSS {one['peak_rss_mb']:6.0f} MB")
    print(f"build, {args.workers} encoding threads: {many['seconds']:6.2f} s wall, peak RSS {many['peak_rss_mb']:6.0f} MB, "
          f"speed-up {one['seconds'] / many['seconds']:.2f}x")
    if args.scale > 1:
        big = run(args.workers, args.scale)
        print(f"build x{args.scale} sizes, {args.workers} threads: {big['seconds']:6.2f} s wall, peak RSS {big['peak_rss_mb']:6.0f} MB")
    print("target: <= 10 s wall on 2 cores, peak memory < 1 GB")


if __name__ == "__main__":
    main()

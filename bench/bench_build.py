#!/usr/bin/env python
"""Wall time and peak memory of building the whole v1 release (all configs, parquet, card, manifest).

    python bench/bench_build.py [--workers 2]

Builds into a temporary folder in a child process (so peak RSS is the build's own), once with PNG
encoding on 1 thread and once on --workers threads, and prints both and the ratio.
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
t0 = time.perf_counter()
build_release(sys.argv[1], workers=int(sys.argv[2]), progress=False)
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(workers: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", CHILD, f"{d}/rel", str(workers)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    one = run(1)
    many = run(args.workers)
    print(f"build, 1 encoding thread : {one['seconds']:6.2f} s wall, peak RSS {one['peak_rss_mb']:6.0f} MB")
    print(f"build, {args.workers} encoding threads: {many['seconds']:6.2f} s wall, peak RSS {many['peak_rss_mb']:6.0f} MB, "
          f"speed-up {one['seconds'] / many['seconds']:.2f}x")
    print("target: <= 10 s wall on 2 cores, peak memory < 1 GB")


if __name__ == "__main__":
    main()

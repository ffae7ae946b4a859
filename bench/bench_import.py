#!/usr/bin/env python
"""How long `import cemnist_data` takes, next to importing torch and datasets eagerly (what it cost before).

    python bench/bench_import.py [--repeat 5]

Each variant runs in a fresh interpreter `--repeat` times; the median wall time of `python -c "pass"`
is subtracted, so the numbers are the imports alone. Prints both and their ratio in one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

VARIANTS = {
    "python -c pass (subtracted)": "pass",
    "import cemnist_data": "import cemnist_data",
    "import torch, datasets, cemnist_data (eager)": "import torch, datasets, cemnist_data",
}


def _median_seconds(code: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="fresh interpreters per variant (median is reported)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        raise SystemExit(f"--repeat must be >= 1, got {args.repeat}")
    base, lazy, eager = (_median_seconds(code, args.repeat) for code in VARIANTS.values())
    print(f"python startup:                         {base:.3f} s (median of {args.repeat})")
    print(f"import cemnist_data:                    {lazy - base:.3f} s")
    print(f"import torch, datasets, cemnist_data:   {eager - base:.3f} s")
    print(f"ratio eager / lazy:                     {(eager - base) / max(lazy - base, 1e-6):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

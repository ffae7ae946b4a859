"""``cemnist-baselines``: run baselines, build the leaderboard, check the quality targets.

  cemnist-baselines run --method mib --seeds 0 1 2 [--jobs K] [--preset tiny] [--device auto|cpu|cuda]
                        [--out DIR] [--resume] [--trace]
  cemnist-baselines run --method all --preset quick          # naive kd mib joint
  cemnist-baselines leaderboard --results DIR
  cemnist-baselines targets --results DIR
  cemnist-baselines progress --results DIR     # per-task metrics of unfinished runs, from their checkpoints
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from .config import DEFAULT_SEEDS, PRESETS, get_config


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cemnist-baselines", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train methods x seeds, write result JSONs and the leaderboard")
    r.add_argument("--method", nargs="+", default=["all"], help="naive kd mib joint, or all (default)")
    r.add_argument("--seeds", nargs="+", type=int, default=None, help="default: 0 1 2 (default preset), 0 otherwise")
    r.add_argument("--preset", default="default", choices=sorted(PRESETS))
    r.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    r.add_argument("--jobs", type=int, default=1, help="concurrent runs in separate processes")
    r.add_argument("--out", default=None, help="output folder (default runs/<preset>)")
    r.add_argument("--resume", action="store_true", help="continue from the last finished task of each run")
    r.add_argument("--trace", action="store_true", help="record per-epoch confusions and prediction panels")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--setting", default=None)
    r.add_argument("--mode", default=None, choices=["overlap", "disjoint"])
    r.add_argument("--epochs", type=int, default=None)
    r.add_argument("--max-train", type=int, default=None)
    r.add_argument("--max-test", type=int, default=None)
    r.add_argument("--compile", dest="compile", action="store_true", default=None, help="torch.compile the training step (default: off)")
    r.add_argument("--no-compile", dest="compile", action="store_false")
    r.add_argument("--cuda-graphs", action="store_true", default=None, help="capture the compiled step in CUDA graphs (implies --compile; CUDA only)")
    r.add_argument("--amp", action="store_true", default=None,
                   help="bf16 autocast (off by default: the reference numbers are fp32)")
    r.add_argument("--cache-dir", default=None, help="dataset cache (default $CEMNIST_CACHE or ~/.cache/cemnist)")
    lb = sub.add_parser("leaderboard", help="aggregate result JSONs into LEADERBOARD.md and leaderboard.csv")
    lb.add_argument("--results", required=True)
    lb.add_argument("--out", default=None, help="default: the results folder")
    tg = sub.add_parser("targets", help="check the quality targets (targets.csv) on a results folder")
    tg.add_argument("--results", required=True)
    tg.add_argument("--preset", default="default")
    tg.add_argument("--setting", default="2-2")
    tg.add_argument("--mode", default="overlap")
    pg = sub.add_parser("progress", help="per-task metrics of (unfinished) runs, read from their checkpoints")
    pg.add_argument("--results", required=True)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad arguments, 1 for unmet targets)."""
    argv = sys.argv[1:] if argv is None else argv
    p = _parser()
    a = p.parse_args(argv)
    command = "cemnist-baselines " + shlex.join(argv)
    try:
        if a.cmd == "run":
            from .leaderboard import write_leaderboard
            from .runner import run_many
            if a.epochs is not None and a.epochs < 1:
                raise ValueError(f"--epochs must be >= 1, got {a.epochs}")
            cfg = get_config(a.preset, setting=a.setting, mode=a.mode, epochs=a.epochs, max_train=a.max_train,
                             max_test=a.max_test, compile=a.compile, cuda_graphs=a.cuda_graphs,
                             amp_bf16=a.amp)
            seeds = a.seeds if a.seeds is not None else list(DEFAULT_SEEDS[a.preset])
            out = Path(a.out or f"runs/{a.preset}")
            t0 = time.perf_counter()
            results = run_many(methods=a.method, seeds=seeds, cfg=cfg, out_dir=out, preset=a.preset,
                               device=a.device, jobs=a.jobs, resume=a.resume, trace=a.trace,
                               progress=not a.no_progress, cache_dir=a.cache_dir)
            md, cs = write_leaderboard(out, command=command)
            for r in results:
                f = r["final"]
                f = f["future_bg"]
                fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
                print(f"{r['method']:>6} seed {r['seed']}: final mIoU(bg) {fmt(f['miou_bg'])}  mIoU {fmt(f['miou'])}  "
                      f"old {fmt(f['old'])}  new {fmt(f['new'])}")
            print(f"{len(results)} runs in {time.perf_counter() - t0:.1f} s -> {out}/ ; leaderboard: {md} {cs}")
        elif a.cmd == "leaderboard":
            from .leaderboard import write_leaderboard
            md, cs = write_leaderboard(a.results, out_dir=a.out, command=command)
            print(md.read_text())
            print(f"wrote {md} and {cs}")
        elif a.cmd == "progress":
            from .progress import format_progress, run_progress
            print(format_progress(run_progress(a.results)))
        elif a.cmd == "targets":
            from .leaderboard import aggregate, load_results
            from .targets import check_targets, load_targets
            checks = check_targets(aggregate(load_results(a.results)), load_targets(), setting=a.setting,
                                   mode=a.mode, preset=a.preset)
            for _, _, ok, msg in checks:
                print(("PASS " if ok else "FAIL ") + msg)
            return 0 if all(ok for _, _, ok, _ in checks) else 1
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"cemnist-baselines: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

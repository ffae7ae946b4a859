"""Run several (method, seed) runs, sequentially or concurrently in spawned processes (``--jobs K``).

One small run leaves a GPU mostly idle; K processes sharing it raise total throughput. Runs of the
same seed share the task-0 checkpoint (a file lock makes concurrent runs wait for the one computing it);
the schedule starts one incremental run per seed first so that nobody waits.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Sequence

import torch

from .config import TrainConfig
from .methods import METHODS, get_method
from .trainer import check_mode, check_seed, resolve_device, run_one, run_stem

ALL_METHODS = ("naive", "kd", "mib", "joint")


def expand_methods(methods: str | Sequence[str]) -> list[str]:
    """``"all"`` -> naive kd mib joint; validates every name (ValueError)."""
    names = [methods] if isinstance(methods, str) else list(methods)
    out: list[str] = []
    for n in names:
        for m in (ALL_METHODS if n == "all" else (n,)):
            get_method(m)
            if m not in out:
                out.append(m)
    if not out:
        raise ValueError("no method given")
    return out


def schedule(methods: Sequence[str], seeds: Sequence[int]) -> list[tuple[str, int]]:
    """Order: the first incremental method of every seed, then joint runs, then the rest."""
    inc = [m for m in methods if not METHODS[m].joint]
    joint = [m for m in methods if METHODS[m].joint]
    first = [(inc[0], s) for s in seeds] if inc else []
    rest = [(m, s) for s in seeds for m in inc[1:]]
    return first + [(m, s) for s in seeds for m in joint] + rest


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _worker(kwargs: dict[str, Any], q: Any) -> dict[str, Any]:
    return run_one(**kwargs, progress=False, progress_cb=q.put)


def run_many(
    *,
    methods: str | Sequence[str],
    seeds: Sequence[int],
    cfg: TrainConfig,
    out_dir: str | Path,
    preset: str = "custom",
    device: str = "auto",
    jobs: int = 1,
    resume: bool = False,
    trace: bool = False,
    progress: bool = True,
    cache_dir: str | None = None,
) -> list[dict[str, Any]]:
    """Run every (method, seed); returns the result dicts in schedule order."""
    names = expand_methods(methods)
    seeds = [check_seed(s) for s in seeds]
    if not seeds:
        raise ValueError("no seed given")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"duplicate seeds in {list(seeds)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    check_mode(cfg.mode)
    dev = resolve_device(device)  # fail early, before any process starts
    from .data import dataset_info, resolve_tasks
    info = dataset_info(path=cfg.dataset_path, cache_dir=cache_dir)
    n_tasks = len(resolve_tasks(cfg.setting, cfg.class_order, info))
    plan = schedule(names, seeds)
    common = dict(cfg=cfg, out_dir=str(out_dir), preset=preset, device=str(dev), resume=resume, trace=trace,
                  cache_dir=cache_dir)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=float(n_tasks * len(plan)), desc=f"{len(plan)} runs", unit="task",
                   bar_format="{l_bar}{bar}| {n:.1f}/{total:.0f} tasks [{elapsed}<{remaining}]")
    results: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        if jobs == 1 or len(plan) == 1:
            for m, s in plan:
                results[(m, s)] = run_one(method=m, seed=s, progress=False,
                                          progress_cb=bar.update if bar else None, **common)
        else:
            ctx = mp.get_context("spawn")
            threads = max(1, (os.cpu_count() or 1) // jobs) if dev.type == "cpu" else 1
            with ctx.Manager() as mgr:
                q = mgr.Queue()
                with ProcessPoolExecutor(max_workers=min(jobs, len(plan)), mp_context=ctx,
                                         initializer=_init_worker, initargs=(threads,)) as ex:
                    futs = {ex.submit(_worker, dict(method=m, seed=s, **common), q): (m, s) for m, s in plan}
                    pending = set(futs)
                    try:
                        while pending:
                            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                            _drain(q, bar)
                            for f in done:
                                m, s = futs[f]
                                try:
                                    results[(m, s)] = f.result()
                                except Exception as e:
                                    raise RuntimeError(f"run {run_stem(m, cfg.setting, cfg.mode, s)} failed: {e}") from e
                    finally:
                        for f in pending:
                            f.cancel()
                    _drain(q, bar)
    finally:
        if bar is not None:
            bar.close()
    return [results[k] for k in plan]


def _drain(q: Any, bar: Any) -> None:
    while True:
        try:
            u = q.get_nowait()
        except queue.Empty:
            return
        if bar is not None:
            bar.update(u)

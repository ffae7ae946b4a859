"""Run several (method, seed) runs, sequentially or concurrently in spawned processes (``--jobs K``).

One small run leaves a GPU mostly idle; K processes sharing it raise total throughput. With ``--device cuda``
(no index) the workers are spread over the visible GPUs round-robin (worker i on ``cuda:{i % #GPUs}``);
``--device cuda:N`` puts every worker on GPU N. Runs of the same seed share the task-0 checkpoint (a file lock
makes concurrent runs wait for the one computing it); the schedule starts one incremental run per seed first so
that nobody waits.
"""
from __future__ import annotations

import errno
import multiprocessing as mp
import os
import queue
import signal
import sys
import tempfile
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Sequence

import torch

from .errors import WriteError
from .config import TrainConfig, check_mode, complete_config
from .devices import resolve_device
from .registry import expand_group, get_method
from .results import run_stem
from .seeding import check_seed
from .trainer import run_one

def expand_methods(methods: str | Sequence[str]) -> list[str]:
    """``"all"`` -> every built-in (:data:`~cemnist_baselines.registry.METHOD_GROUPS`); validates every name or plug-in reference (ValueError). Two
    references to methods of one name are refused."""
    names = [methods] if isinstance(methods, str) else list(methods)
    out: list[str] = []
    by_name: dict[str, str] = {}
    for n in names:
        for m in expand_group(n):
            name = get_method(m).name
            if name in by_name and by_name[name] != m:
                raise ValueError(f"methods {by_name[name]!r} and {m!r} are both called {name!r}: their results "
                                 f"would share file names")
            by_name[name] = m
            if m not in out:
                out.append(m)
    if not out:
        raise ValueError("no method given")
    return out


def schedule(methods: Sequence[str], seeds: Sequence[int]) -> list[tuple[str, int]]:
    """Order: the first incremental method of every seed, then joint runs, then the rest."""
    inc = [m for m in methods if not get_method(m).joint]
    joint = [m for m in methods if get_method(m).joint]
    first = [(inc[0], s) for s in seeds] if inc else []
    rest = [(m, s) for s in seeds for m in inc[1:]]
    return first + [(m, s) for s in seeds for m in joint] + rest


_QUEUE: Any = None
_DEVICE: str | None = None  # this worker's device (set by _init_worker)


def worker_device(device: torch.device, index: int, n_devices: int) -> torch.device:
    """The device of ``--jobs`` worker ``index``: ``cuda`` without an index spreads the workers over the
    ``n_devices`` visible GPUs round-robin (``cuda:{index % n_devices}``); any other device is every worker's."""
    if device.type != "cuda" or device.index is not None:
        return device
    if isinstance(n_devices, bool) or not isinstance(n_devices, int) or n_devices < 1:
        raise ValueError(f"n_devices must be an integer >= 1 for --device cuda, got {n_devices!r}")
    return torch.device("cuda", index % n_devices)


def compile_threads(jobs: int, *, cpu_count: int | None = None) -> int:
    """Inductor compile threads per ``--jobs`` worker (``TORCHINDUCTOR_COMPILE_THREADS``): the CPUs shared
    among the workers, at least 1 (each worker would otherwise start a pool of one process per CPU)."""
    return max(1, (cpu_count if cpu_count is not None else (os.cpu_count() or 1)) // max(1, jobs))


def die_with_parent(parent_pid: int) -> None:
    """Linux: ask the kernel to SIGKILL this process when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so a
    killed ``--jobs`` parent leaves no worker training on, writing into the folder or holding a GPU."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # 1 = PR_SET_PDEATHSIG
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _init_worker(threads: int, q: Any, parent_pid: int, counter: Any = None, device: str = "cpu",
                 n_devices: int = 0, inductor_threads: int = 0) -> None:
    global _QUEUE
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it terminates workers on SIGINT/SIGTERM
    torch.set_num_threads(threads)
    _QUEUE = q
    index = 0
    if counter is not None:
        with counter.get_lock():
            index = counter.value
            counter.value += 1
    setup_worker(index, device=device, n_devices=n_devices, inductor_threads=inductor_threads)


def setup_worker(index: int, *, device: str, n_devices: int, inductor_threads: int) -> str:
    """Set up ``--jobs`` worker ``index`` (0, 1, ... in start order): its device (:func:`worker_device`) and,
    with ``inductor_threads`` > 0 (``--compile``), ``TORCHINDUCTOR_COMPILE_THREADS``; returns the device."""
    global _DEVICE
    if inductor_threads > 0:
        os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = str(inductor_threads)
        if "torch._inductor.config" in sys.modules:  # read at import: set the live value too
            sys.modules["torch._inductor.config"].compile_threads = inductor_threads
    _DEVICE = str(worker_device(torch.device(device), index, n_devices))
    return _DEVICE


def _worker(kwargs: dict[str, Any]) -> dict[str, Any]:
    if _DEVICE is not None:
        kwargs = dict(kwargs, device=_DEVICE)
    return run_one(**kwargs, progress=False, progress_cb=_QUEUE.put)


class _Terminated(KeyboardInterrupt):
    """SIGTERM received by the parent of a ``--jobs`` run (handled like Ctrl-C)."""


CPU_IMAGE_STEPS_PER_S = 150.0
"""The rate of the long-run estimate: a naive fp32 training step on 2 CPU cores (docs/PROTOCOL.md section 1 measured
151 images/s; bf16 361, a GPU far more)."""


def planned_image_steps(cfg: TrainConfig, info: dict[str, Any], n_tasks: int) -> int:
    """Image-steps of one run of ``cfg``: epochs x the training images of every task (``max_train`` applied; a
    joint run trains on the same images)."""
    from .data import config_name

    total = 0
    for t in range(n_tasks):
        n = int(info["configs"][config_name(cfg.mode, t)]["train"]["num_rows"])
        total += min(n, cfg.max_train) if cfg.max_train else n
    return cfg.epochs * total


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.0f} s"


def long_run_notice(cfg: TrainConfig, info: dict[str, Any], n_tasks: int, *, runs: int) -> str | None:
    """A line with the planned image-steps and a time estimate when one run of ``cfg`` plans more image-steps
    than the ``long`` preset (100 epochs on the whole training splits); None otherwise."""
    from .config import get_config

    planned = planned_image_steps(cfg, info, n_tasks)
    ref = planned_image_steps(get_config("long", setting=cfg.setting, mode=cfg.mode), info, n_tasks)
    if planned <= ref:
        return None
    eta = _duration(planned * runs / CPU_IMAGE_STEPS_PER_S)
    return (f"planned: {planned:,} image-steps per run x {runs} run(s), {planned / ref:,.1f} times the `long` preset's "
            f"{ref:,} per run; at about {CPU_IMAGE_STEPS_PER_S:g} image-steps/s (2 CPU cores, fp32) that is about "
            f"{eta}. Check --epochs and --max-train; Ctrl-C stops the run (finished tasks are checkpointed)")


_OUT_FIX = "choose another --out"


def check_out_writable(out_dir: str | Path) -> Path:
    """Create ``--out`` (with its parents) and check that files can be written in it, before any training: a
    name that is not UTF-8, a part that is a file or longer than the file system allows, a symbolic-link loop,
    or a read-only folder is a ValueError naming the path and the fix. Returns the folder."""
    raw = os.fspath(out_dir)
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"--out {raw.encode('utf-8', 'surrogateescape')!r}: the name is not valid UTF-8 (result "
                         f"files and the leaderboard record it); {_OUT_FIX} with a UTF-8 name") from None
    out = Path(raw)
    limit = 255
    for part in out.parts:
        if len(os.fsencode(part)) > limit:
            raise ValueError(f"--out {raw}: the part {part[:40]!r}... is {len(os.fsencode(part))} bytes, longer than "
                             f"a file name may be ({limit}); {_OUT_FIX} with a shorter name")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".cemnist-write-check-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        if e.errno == errno.ELOOP:
            why = "its path runs through a symbolic-link loop; remove or fix the link, or"
        elif e.errno in (errno.ENOTDIR, errno.EEXIST):
            part = next((a for a in reversed(out.parents) if a.exists() and not a.is_dir()), out)
            why = f"{part} is a file, not a folder;"
        elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            why = ("it is read-only (" + ("read-only file system" if e.errno == errno.EROFS else "permission denied")
                   + "); make it writable (chmod u+w) or")
        elif e.errno == errno.ENAMETOOLONG:
            why = "the path is longer than the file system allows;"
        else:
            why = f"it cannot be created or written ({e.strerror or e});"
        raise ValueError(f"--out {raw}: {why} {_OUT_FIX}") from e
    return out


def check_out_folder(out_dir: str | Path, plan: Sequence[tuple[str, int]], cfg_dict: dict[str, Any], *,
                     setting: str, mode: str, resume: bool, overwrite: bool) -> None:
    """Refuse to mix runs: a result of the same method/seed written with another config is an error naming
    the files (``--overwrite`` replaces such runs as a whole; ``--resume`` needs equal configs anyway)."""
    from .results import ResultError, load_result

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file, not a folder; choose a folder")
    if overwrite or not out.is_dir():
        return
    clash = []
    for m, s in plan:
        p = out / f"{run_stem(get_method(m).name, setting, mode, s)}.json"
        if not p.exists():
            continue
        try:
            old = load_result(p)
        except ResultError as e:
            clash.append(f"{p.name} (unreadable: {e})")
            continue
        old_cfg = complete_config(old.get("config", {}))
        if old_cfg != cfg_dict:
            diff = sorted(k for k in set(old_cfg) | set(cfg_dict) if old_cfg.get(k) != cfg_dict.get(k))
            clash.append(f"{p.name} (config differs in {diff}, preset {old.get('preset')!r})")
    if clash:
        raise ValueError(f"{out} already holds other runs of the same method/seed: {'; '.join(clash)}. "
                         f"Use another --out folder, or --overwrite to replace those runs as a whole")


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
    overwrite: bool = False,
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
    tasks = resolve_tasks(cfg.setting, cfg.class_order, info)
    n_tasks = len(tasks)
    from .plugins import check_method
    from .registry import is_builtin
    for n in names:  # plug-ins: a dry call of their hooks on a tiny batch, before any training
        meth = get_method(n)
        if not is_builtin(meth):
            check_method(meth, cfg=cfg, tasks=tasks)
    plan = schedule(names, seeds)
    notice = long_run_notice(cfg, info, n_tasks, runs=len(plan))
    if notice:
        print(f"cemnist-baselines: note: {notice}", file=sys.stderr, flush=True)
    check_out_writable(out_dir)
    check_out_folder(out_dir, plan, cfg.resolved(dev.type).to_dict(), setting=cfg.setting, mode=cfg.mode,
                     resume=resume, overwrite=overwrite)
    common = dict(cfg=cfg, out_dir=str(out_dir), preset=preset, device=str(dev), resume=resume, trace=trace,
                  cache_dir=cache_dir, overwrite=overwrite)
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
            _run_pool(plan, common, jobs=jobs, dev=dev, cfg=cfg, bar=bar, results=results)
    finally:
        if bar is not None:
            bar.close()
    return [results[k] for k in plan]


def _run_pool(plan: Sequence[tuple[str, int]], common: dict[str, Any], *, jobs: int, dev: torch.device,
              cfg: TrainConfig, bar: Any, results: dict[tuple[str, int], dict[str, Any]]) -> None:
    """Runs in ``jobs`` spawned worker processes that die with this process; SIGINT/SIGTERM terminate them."""
    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs) if dev.type == "cpu" else 1
    q = ctx.Queue()
    workers = min(jobs, len(plan))
    n_devices = torch.cuda.device_count() if dev.type == "cuda" else 0  # no CUDA context in this process
    inductor = compile_threads(workers) if cfg.resolved(dev.type).compile else 0
    ex = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads, q, os.getpid(), ctx.Value("i", 0), str(dev), n_devices, inductor))

    def on_term(signum: int, frame: Any) -> None:
        raise _Terminated()

    old_term = signal.signal(signal.SIGTERM, on_term) if threading.current_thread() is threading.main_thread() else None
    clean = False
    try:
        futs = {ex.submit(_worker, dict(method=m, seed=s, **common)): (m, s) for m, s in plan}
        pending = set(futs)
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            _drain(q, bar)
            for f in done:
                m, s = futs[f]
                try:
                    results[(m, s)] = f.result()
                except WriteError:  # disk full: its message names the path and the fix
                    raise
                except Exception as e:
                    raise RuntimeError(f"run {run_stem(get_method(m).name, cfg.setting, cfg.mode, s)} failed: {e}") from e
        _drain(q, bar)
        clean = True
    finally:
        if not clean:  # error, Ctrl-C or SIGTERM: stop every worker now, not after its run
            for p in list(getattr(ex, "_processes", {}).values()):  # no public API to stop running workers
                p.terminate()
        ex.shutdown(wait=True, cancel_futures=True)
        q.close()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _drain(q: Any, bar: Any) -> None:
    while True:
        try:
            u = q.get_nowait()
        except queue.Empty:
            return
        if bar is not None:
            bar.update(u)

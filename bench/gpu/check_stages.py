"""The Python stages of ``bench/gpu/check.sh``; each appends ``stage<TAB>status<TAB>detail`` lines to
``$GPUCHK_WORK/summary.tsv`` and one JSON object per line to ``results.jsonl``.

    python bench/gpu/check_stages.py methods                 # every built-in method, tiny preset, --trace
    python bench/gpu/check_stages.py run TAG KIND [--ref] [--micro] [--det] [--epochs N]
    python bench/gpu/check_stages.py same TAG_A TAG_B TAG     # bitwise-identical confusions?
    python bench/gpu/check_stages.py replay_resume            # replay: 2 tasks, then --resume of the rest

``run``: naive seed 0 with the default protocol (``KIND`` eager | compile | graphs), timed per epoch through the
trainer's progress callback (called after each epoch's isfinite() check, so the epoch's GPU work is done);
``--ref`` compares it with the committed CPU board (``results/v1``) as ``cemnist-baselines compare`` does
(max(3 x the board's seed std, 0.03)) and with the board's seed-0 run step by step (the same batches on every
device: the differences are arithmetic only); ``--micro`` adds the eager microbench (precision, layout, batch;
CUDA kernels per step from torch.profiler); ``--det`` runs with ``deterministic`` (twice, then compares).
Environment: ``GPUCHK_WORK``, ``GPUCHK_REPO``, ``GPUCHK_DEVICE`` (cuda | cpu), ``GPUCHK_SMOKE=1`` (micro
configs everywhere: the CPU dry run).
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch

from cemnist_baselines.config import TrainConfig, get_config
from cemnist_baselines.registry import BUILTIN_METHODS
from cemnist_baselines.trainer import run_one

W, REPO, DEV = Path(os.environ["GPUCHK_WORK"]), Path(os.environ["GPUCHK_REPO"]), os.environ["GPUCHK_DEVICE"]
SMOKE = os.environ.get("GPUCHK_SMOKE") == "1"
MICRO = dict(max_train=16, epochs=1, max_test=8, trace_panel=2)
BOARD = REPO / "results" / "v1"


def emit(stage: str, status: str, detail: str, **extra: Any) -> None:
    """One summary line (and its JSON record)."""
    with open(W / "summary.tsv", "a") as f:
        f.write(f"{stage}\t{status}\t{detail}\n")
    with open(W / "results.jsonl", "a") as f:
        f.write(json.dumps(dict(stage=stage, status=status, detail=detail, **extra), default=str) + "\n")
    print(f">> {stage}: {status} {detail}", flush=True)


def sync() -> None:
    if DEV.startswith("cuda"):
        torch.cuda.synchronize()


def fin(r: dict[str, Any]) -> tuple[float, float]:
    f = r["final"]["future_bg"]
    return f["miou_bg"], f["miou"]


def err(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"


def tiny() -> TrainConfig:
    return get_config("tiny", **(MICRO if SMOKE else {}))


def stage_methods() -> None:
    ok = 0
    for m in BUILTIN_METHODS:
        t0 = time.perf_counter()
        try:
            r = run_one(method=m, seed=0, cfg=tiny(), out_dir=W / "a", preset="tiny", device=DEV, trace=True,
                        progress=False, overwrite=True)
            mb, _ = fin(r)
            ok += 1
            env = r["env"]
            gpu = f", float32 convs {env['cuda_conv_fp32']}" if env["device"] == "cuda" else ""
            emit(f"a.{m}", "PASS", f"{time.perf_counter() - t0:5.1f}s  final mIoU(bg) {mb:.3f}  on "
                                   f"{env['device']} ({env['device_name']}), precision {r['precision']}{gpu}")
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            emit(f"a.{m}", "FAIL", err(e))
    print(f"{ok}/{len(BUILTIN_METHODS)} methods ran")


def run_cfg(kind: str, epochs: int | None, det: bool) -> tuple[TrainConfig, str]:
    """(config, preset name) of a ``run`` stage."""
    if SMOKE:
        base, preset = get_config("tiny", **MICRO), "tiny"
    else:
        base, preset = get_config("default", **({} if epochs is None else {"epochs": epochs})), "default"
    kw = {"compile": dict(compile=True), "graphs": dict(cuda_graphs=True)}.get(kind, {})
    return base.replace(deterministic=det, **kw), preset


def compare_with_board(r: dict[str, Any]) -> tuple[str, str]:
    """(status, detail): the run against the committed CPU board (compare's tolerance) and its seed-0 run."""
    from cemnist_baselines.leaderboard import aggregate
    from cemnist_baselines.results import load_results
    from cemnist_baselines.targets import compare_boards

    board = {x["method"]: x for x in aggregate(load_results(BOARD))
             if x["protocol"] == r["protocol"] and x["device"] == "cpu"}
    seed0 = BOARD / "naive-2-2-overlap-seed0.json"
    if "naive" not in board or not seed0.exists():
        return "INFO", "no committed CPU board run with this protocol (smoke configs are not on the board)"
    diffs = compare_boards({"naive": board["naive"]}, {x["method"]: x for x in aggregate([r])})
    c = json.loads(seed0.read_text())
    per_step = [abs(a["miou_bg"] - b["miou_bg"]) for a, b in zip(r["steps"], c["steps"])]
    same = [a["confusion"] == b["confusion"] for a, b in zip(r["steps"], c["steps"])]
    detail = (f"vs CPU board (3 seeds): {'; '.join(diffs) if diffs else 'within max(3 std, 0.03)'}; vs CPU seed 0 "
              f"(same batches): max |d mIoU(bg)| per step {max(per_step):.4f}, identical steps {sum(same)}/{len(same)}")
    return ("FAIL" if diffs else "PASS"), detail


def stage_run(tag: str, kind: str, *, epochs: int | None = None, ref: bool = False, micro: bool = False,
              det: bool = False) -> None:
    """naive seed 0, per-epoch wall times; see the module docstring."""
    cfg, preset = run_cfg(kind, epochs, det)
    marks: list[float] = []
    prog = open(W / f"{tag}.progress", "w")
    t0 = time.perf_counter()

    def cb(units: float) -> None:
        marks.append(time.perf_counter())
        prog.write(f"{len(marks)} {marks[-1] - t0:.2f}\n")
        prog.flush()

    caught: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as wl:
            warnings.simplefilter("always")
            if DEV.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            r = run_one(method="naive", seed=0, cfg=cfg, out_dir=W / tag, preset=preset, device=DEV, progress=False,
                        progress_cb=cb, overwrite=True)
            uniq = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:160]}" for w in wl})
            print("warnings during the run:", *uniq, sep="\n  ")
            caught = sorted({str(w.message).split(" does not have")[0][:80] for w in wl
                             if "determinis" in str(w.message).lower()})
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        emit(tag, "FAIL", err(e) + f" after {len(marks)} epochs")
        return
    wall = time.perf_counter() - t0
    E = cfg.epochs
    ep = [b - a for a, b in zip([t0] + marks[:-1], marks)]
    tasks = [ep[i:i + E] for i in range(0, len(ep), E)]
    steady = [x for t in tasks for x in t[1:]]
    med = f"{statistics.median(steady) * 1e3:.0f}ms" if steady else "n/a"
    mb, mi = fin(r)
    (W / f"{tag}.path").write_text(str(W / tag / "naive-2-2-overlap-seed0.json"))
    mem = torch.cuda.max_memory_allocated() / 2**20 if DEV.startswith("cuda") else 0
    resolved = r["config"]
    detail = (f"{cfg.precision} {kind}{' deterministic' if resolved['deterministic'] else ''}: wall {wall:.1f}s; epoch {med} (median, "
              f"steady), first epoch per task {'/'.join(f'{t[0]:.1f}' for t in tasks)}s; final mIoU(bg) {mb:.4f} "
              f"mIoU {mi:.4f}; peak {mem:.0f} MiB")
    status = "INFO"
    if ref:
        status, more = compare_with_board(r)
        if SMOKE:
            status = "INFO"  # micro configs: the plumbing only
        detail += "; " + more
    if det:
        detail += f"; ops without a deterministic kernel: {', '.join(caught) or 'none'}"
    emit(tag, status, detail, epochs=ep, final=[mb, mi], cfg=cfg.to_dict(), env=r["env"])
    if micro:
        microbench()


def microbench() -> None:
    """Eager seconds per epoch of the trainer's fast path on 2,500 task-0 images, per precision / layout / batch,
    and CUDA kernels per step from torch.profiler."""
    from cemnist_baselines.backends import backend_settings
    from cemnist_baselines.data import load_task_data
    from cemnist_baselines.registry import METHODS
    from cemnist_baselines.model import SimpleSegNet
    from cemnist_baselines.data import label_maps
    from cemnist_baselines.seeding import make_generator
    from cemnist_baselines.optim_step import make_step, train_epoch

    dev = torch.device(DEV)
    x, y = load_task_data(task=0, split="train", mode="overlap", device=dev)
    if SMOKE:
        x, y = x[:64], y[:64]
    lut, _ = label_maps([[0, 1]], 0, dev)
    rows: dict[str, tuple] = {}
    variants = [("bf16+CL/b32", {}), ("fp32+CL/b32", dict(amp_bf16=False)), ("bf16+NCHW/b32", dict(channels_last=False)),
                ("fp32+NCHW/b32", dict(amp_bf16=False, channels_last=False)),
                ("fp32+CL/b72", dict(amp_bf16=False, batch_size=72))]
    for name, kw in variants:
        try:
            cfg = get_config("default", **kw).resolved(dev.type)
            with backend_settings(cfg, dev):
                model = SimpleSegNet(3, generator=torch.Generator().manual_seed(0)).to(dev)
                step = make_step(model, None, METHODS["naive"].loss, lut, cfg=cfg, c_old=3, device=dev,
                                 total_steps=100000)
                g = make_generator(0, torch.device("cpu"), "bench")
                train_epoch(step, x, y, batch_size=cfg.batch_size, generator=g)
                sync()
                t = time.perf_counter()
                n = 1 if SMOKE else 3
                for _ in range(n):
                    train_epoch(step, x, y, batch_size=cfg.batch_size, generator=g)
                sync()
                s = (time.perf_counter() - t) / n
                nb = -(-x.shape[0] // cfg.batch_size)
                rows[name] = (s, s / nb * 1e3, x.shape[0] / s)
                if name in ("bf16+CL/b32", "fp32+CL/b32") and DEV.startswith("cuda"):
                    rows[name] += kernels_per_step(step, x, y, cfg.batch_size, g)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            rows[name] = (float("nan"), float("nan"), float("nan"), err(e))
    parts = []
    for name, v in rows.items():
        if len(v) == 4 and isinstance(v[3], str):
            parts.append(f"{name} FAIL {v[3]}")
            continue
        p = f"{name} {v[1]:.2f}ms/step {v[2]:.0f}img/s"
        if len(v) >= 5:
            p += f" [{v[3]:.0f} GPU events/step, busy {100 * v[4] / v[1]:.0f}%]"
        parts.append(p)
    emit("b.micro", "INFO", " | ".join(parts), rows=rows)


def kernels_per_step(step: Any, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                     g: torch.Generator) -> tuple[float, float]:
    """(CUDA events per step, GPU-busy ms per step) over 10 steps, from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    from cemnist_baselines.optim_step import train_epoch

    k = 10
    xs, ys = x[:k * batch_size], y[:k * batch_size]
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        train_epoch(step, xs, ys, batch_size=batch_size, generator=g)
        sync()
    cuda_t = torch.autograd.DeviceType.CUDA
    try:
        ev = [e for e in prof.events() if e.device_type == cuda_t]
        n_ev, busy_us = len(ev), sum(e.time_range.elapsed_us() for e in ev)
    except Exception:  # noqa: BLE001  (profiler API drift): the aggregate view instead
        ka = [e for e in prof.key_averages() if e.device_type == cuda_t]
        n_ev = sum(e.count for e in ka)
        busy_us = sum(getattr(e, "self_device_time_total", 0) or getattr(e, "self_cuda_time_total", 0) for e in ka)
    return n_ev / k, busy_us / k / 1e3


def stage_same(a: str, b: str, tag: str) -> None:
    ra = json.loads(Path((W / f"{a}.path").read_text()).read_text())
    rb = json.loads(Path((W / f"{b}.path").read_text()).read_text())
    ca = [s["confusion"] for s in ra["steps"]]
    cb = [s["confusion"] for s in rb["steps"]]
    if ca == cb:
        emit(tag, "SAME", f"{a} vs {b}: confusions of all {len(ca)} steps bitwise identical")
    else:
        diff = [i for i, (p, q) in enumerate(zip(ca, cb)) if p != q]
        mx = max(abs(u - v) for p, q in zip(ca, cb) for pr, qr in zip(p, q) for u, v in zip(pr, qr))
        d = abs(fin(ra)[0] - fin(rb)[0])
        emit(tag, "DIFF", f"{a} vs {b}: steps {diff} differ (max |count diff| {mx} px), final mIoU(bg) |d| {d:.4f}")


def stage_replay_resume() -> None:
    """replay through every task, then --resume from its task-2 checkpoint: the state comes back from the
    checkpoint onto the device; the resumed run must reach the end (and, deterministic, equal the first)."""
    cfg = tiny().replace(deterministic=True)
    out = W / "r"
    try:
        full = run_one(method="replay", seed=0, cfg=cfg, out_dir=out, preset="tiny", device=DEV, progress=False,
                       overwrite=True)
        stem = "replay-2-2-overlap-seed0"
        shutil.copytree(out / "checkpoints" / stem, W / "r2" / "checkpoints" / stem)
        for i in range(3, 5):
            (W / "r2" / "checkpoints" / stem / f"task{i}.safetensors").unlink()
        r = run_one(method="replay", seed=0, cfg=cfg, out_dir=W / "r2", preset="tiny", device=DEV, progress=False,
                    resume=True)
        same = r["steps"] == full["steps"]
        emit("r", "PASS" if same else "DIFF", f"replay resumed from task 3 on {DEV}; final mIoU(bg) {fin(r)[0]:.3f}; "
                                              f"{'equal to' if same else 'DIFFERENT from'} the uninterrupted run")
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        emit("r", "FAIL", "replay --resume: " + err(e))


def main(argv: list[str]) -> None:
    cmd = argv[0]
    if cmd == "methods":
        stage_methods()
    elif cmd == "run":  # run TAG KIND [--epochs N] [--ref] [--micro] [--det]
        a = argv[1:]
        ep = int(a[a.index("--epochs") + 1]) if "--epochs" in a else None
        det = "--det" in a
        stage_run(a[0], a[1], epochs=ep, ref="--ref" in a, micro="--micro" in a, det=det)
        if det:
            stage_run(a[0] + "2", a[1], epochs=ep, det=True)
            stage_same(a[0], a[0] + "2", a[0] + ".same")
    elif cmd == "same":
        stage_same(argv[1], argv[2], argv[3])
    elif cmd == "replay_resume":
        stage_replay_resume()
    else:
        raise SystemExit(f"unknown stage {cmd!r}; see the docstring")


if __name__ == "__main__":
    main(sys.argv[1:])

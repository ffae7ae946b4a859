"""The budget study of docs/PROTOCOL.md: task-0 learning curves on the validation pool.

``python -m cemnist_baselines.study task0 --out results/study/task0 --grid NAME ...`` trains task 0 of the
2-2 overlap setting once per grid point (schedule, peak lr, batch, epochs) and records the validation-pool
mIoU (bg, future → background view) after every epoch; one JSON per point (resumable: existing points are
skipped). ``... plot`` draws the curves. Whole 5-task runs use ``cemnist-baselines run --eval-split
validation``; ``... budgets --runs DIR...`` tabulates and plots them. ``... pod-scale --checkpoints DIR``
weighs PLOP's POD term per distilled map against CE between a run's models before and after a task;
``... where`` shows where the pixels of some digits go after a task (from the stored confusions).
Validation only for choices: the study never tunes on the test pool.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from .artifacts import atomic_write_text, env_info, git_commit
from .config import TrainConfig, get_config
from .data import dataset_info, label_maps, load_eval_pool, load_task_data, resolve_tasks
from .inference import confusion
from .metrics import task_metrics
from .model import SimpleSegNet
from .optim_step import make_step, steps_per_epoch, train_epoch
from .registry import METHODS
from .seeding import make_generator

# name -> overrides of the default preset; every point trains task 0 only
GRID: dict[str, dict[str, Any]] = {
    "const-5e-4-b72-e24": dict(schedule="constant", lr=5e-4, batch_size=72, epochs=24),
    "const-1e-3-b32-e12": dict(schedule="constant", lr=1e-3, batch_size=32, epochs=12),
    "cos-3e-3-b32-e8": dict(schedule="cosine", lr=3e-3, batch_size=32, epochs=8, warmup=0.05),
    "1cyc-3e-3-b32-e4": dict(schedule="onecycle", lr=3e-3, batch_size=32, epochs=4, warmup=0.15),
    "1cyc-3e-3-b32-e8": dict(schedule="onecycle", lr=3e-3, batch_size=32, epochs=8, warmup=0.15),
    "1cyc-3e-3-b32-e12": dict(schedule="onecycle", lr=3e-3, batch_size=32, epochs=12, warmup=0.15),
    "1cyc-3e-3-b32-e16": dict(schedule="onecycle", lr=3e-3, batch_size=32, epochs=16, warmup=0.15),
    "1cyc-6e-3-b32-e8": dict(schedule="onecycle", lr=6e-3, batch_size=32, epochs=8, warmup=0.15),
    "1cyc-1.5e-3-b32-e8": dict(schedule="onecycle", lr=1.5e-3, batch_size=32, epochs=8, warmup=0.15),
    "1cyc-3e-3-b16-e8": dict(schedule="onecycle", lr=3e-3, batch_size=16, epochs=8, warmup=0.15),
    "1cyc-3e-3-b64-e8": dict(schedule="onecycle", lr=3e-3, batch_size=64, epochs=8, warmup=0.15),
}


def task0_curve(cfg: TrainConfig, *, seed: int, device: str = "cpu", cache_dir: str | None = None) -> dict[str, Any]:
    """Train task 0 with ``cfg``; validation-pool metrics (future → background) after every epoch."""
    dev = torch.device(device)
    info = dataset_info(path=cfg.dataset_path, cache_dir=cache_dir)
    tasks = resolve_tasks(cfg.setting, cfg.class_order, info)
    x, y = load_task_data(task=0, split="train", mode=cfg.mode, path=cfg.dataset_path, limit=cfg.max_train,
                          device=dev, cache_dir=cache_dir)
    px, py = load_eval_pool(mode=cfg.mode, n_tasks=len(tasks), split="validation", max_n=cfg.max_test,
                            path=cfg.dataset_path, device=dev, cache_dir=cache_dir)
    lut, ch2lab = label_maps(tasks, 0, dev)
    model = SimpleSegNet(1 + len(tasks[0]), width=cfg.width,
                         generator=make_generator(seed, torch.device("cpu"), "init")).to(dev)
    nb = steps_per_epoch(x.shape[0], cfg.batch_size)
    step = make_step(model, None, METHODS["naive"].loss, lut, cfg=cfg, c_old=model.num_classes, device=dev,
                     total_steps=cfg.epochs * nb)
    gen = make_generator(seed, torch.device("cpu"), "shuffle", 0)  # the trainer's batches on every device
    curve = []
    t0 = time.perf_counter()
    train_s = 0.0
    for e in range(1, cfg.epochs + 1):
        ts = time.perf_counter()
        model.train()
        losses = train_epoch(step, x, y, batch_size=cfg.batch_size, generator=gen)
        train_s += time.perf_counter() - ts
        model.eval()
        m = task_metrics(confusion(model, px, py, ch2lab, batch_size=cfg.eval_batch_size, amp=cfg.amp_bf16),
                         ch2lab.tolist())
        curve.append({"epoch": e, "step": e * nb, "images": e * x.shape[0], "loss": float(losses.mean()),
                      "miou_bg": m["miou_bg"], "iou_per_label": m["iou_per_label"][:3]})
    return {"config": cfg.to_dict(), "seed": seed, "curve": curve, "train_s": train_s,
            "wall_s": time.perf_counter() - t0, "env": env_info(dev), "git_commit": git_commit(),
            "eval": "validation pool (every task's validation split, full_mask), view future -> background"}


def cmd_task0(a: argparse.Namespace) -> int:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    names = a.grid or list(GRID)
    for name in names:
        if name not in GRID:
            raise ValueError(f"unknown grid point {name!r}; choose from {sorted(GRID)}")
    for name in names:
        for seed in a.seeds:
            for prec in a.precision:
                path = out / f"{name}-{prec}-seed{seed}.json"
                if path.exists():
                    continue
                cfg = get_config("default", **GRID[name], amp_bf16=(prec == "bf16"))
                res = task0_curve(cfg, seed=seed, cache_dir=a.cache_dir)
                res["name"], res["precision"] = name, prec
                atomic_write_text(path, json.dumps(res, indent=1) + "\n")
                last = res["curve"][-1]
                print(f"{path.name}: val mIoU(bg) {last['miou_bg']:.4f} after {last['step']} steps, "
                      f"train {res['train_s']:.0f} s", flush=True)
    return 0


def cmd_plot(a: argparse.Namespace) -> int:
    from cemnist_data.viz.figures import new_figure, save_figure

    runs = [json.loads(p.read_text()) for p in sorted(Path(a.results).glob("*.json"))]
    runs = [r for r in runs if r.get("precision") == a.precision and r.get("seed") == a.seed]
    if not runs:
        raise ValueError(f"no task-0 study results for precision {a.precision} seed {a.seed} in {a.results}")
    print("| grid point | schedule | peak lr | batch | epochs | steps | val mIoU(bg) at the end | best |")
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted(runs, key=lambda r: r["name"]):
        c, cfg = r["curve"], r["config"]
        print(f"| {r['name']} | {cfg['schedule']} | {cfg['lr']:g} | {cfg['batch_size']} | {cfg['epochs']} | "
              f"{c[-1]['step']} | {c[-1]['miou_bg']:.3f} | {max(p['miou_bg'] for p in c):.3f} |")
    fig = new_figure(9, 5.5)
    ax = fig.add_subplot(1, 1, 1)
    from matplotlib import colormaps

    ax.set_prop_cycle(color=list(colormaps["tab20"].colors))   # more grid points than tab10 has colours
    for r in sorted(runs, key=lambda r: r["name"]):
        c = r["curve"]
        style = "-" if r["config"]["schedule"] == "onecycle" else ("--" if r["config"]["schedule"] == "cosine" else ":")
        ax.plot([p["images"] / 1000 for p in c], [p["miou_bg"] for p in c], style, marker="o", ms=3, label=r["name"])
    ax.axhline(0.85, color="grey", lw=0.8)
    ax.set_xlabel("training images seen in task 0 (thousands; 2,500 per epoch)")
    ax.set_ylabel("validation-pool mIoU (bg), task 0")
    ax.set_title(f"Task 0 learning curves ({a.precision}, seed {a.seed}); line = 0.85 bar")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    save_figure(fig, a.out)
    print(f"wrote {a.out}")
    return 0


def cmd_table(a: argparse.Namespace) -> int:
    """Every task-0 study result in a folder: grid point, precision, seed, final validation mIoU(bg); then the
    mean ± std per (grid point, precision) over seeds."""

    runs = [json.loads(p.read_text()) for p in sorted(Path(a.results).glob("*.json"))]
    if not runs:
        raise ValueError(f"no task-0 study results in {a.results}")
    print("| grid point | precision | seed | threads | val mIoU(bg) after the last epoch |")
    print("|---|---|---|---|---|")
    groups: dict[tuple[str, str], list[float]] = {}
    for r in sorted(runs, key=lambda r: (r["name"], r["precision"], r["seed"])):
        v = r["curve"][-1]["miou_bg"]
        groups.setdefault((r["name"], r["precision"]), []).append(v)
        print(f"| {r['name']} | {r['precision']} | {r['seed']} | {r['env']['num_threads']} | {v:.4f} |")
    print()
    for (name, prec), vs in groups.items():
        sd = f" ± {statistics.stdev(vs):.4f}" if len(vs) > 1 else ""
        print(f"{name} {prec}: {statistics.fmean(vs):.4f}{sd} over {len(vs)} seed(s)")
    return 0


def budget_table(folders: Sequence[str | Path]) -> list[dict[str, Any]]:
    """One row per (folder, method): epochs per task and the final validation metrics (future → background)."""
    from .results import load_results

    rows = []
    for f in folders:
        for r in load_results(f):
            if r["evaluation"]["split"] != "validation":
                raise ValueError(f"{r['_path']}: the budget study reads validation runs only (this one is "
                                 f"{r['evaluation']['split']})")
            fin = r["final"]["future_bg"]
            rows.append({"folder": str(f), "method": r["method"], "seed": r["seed"], "epochs": r["config"]["epochs"],
                         "lr": r["config"]["lr"], "lr_next": r["config"].get("lr_next"),
                         "schedule": r["config"]["schedule"], "batch_size": r["config"]["batch_size"],
                         "task0_miou_bg": fin["task0_miou_bg"], "miou_bg": fin["miou_bg"], "miou": fin["miou"],
                         "old": fin["old"], "new": fin["new"], "forgetting_task": fin["forgetting_task"],
                         "wall_s": sum(r["wall_time_per_task_s"])})
    rows.sort(key=lambda x: (x["epochs"], x["lr_next"] or x["lr"], x["method"], x["seed"]))
    return rows


CRITERION_METRICS = ("miou_bg", "miou", "old", "new")


def budget_axis_note(rows: Sequence[Mapping[str, Any]]) -> str:
    """What the budgets plot's runs share besides the epochs, e.g. ``"onecycle, batch 32"``; a value that differs
    between runs is listed with all its values (``"batch 32/72"``)."""
    def vals(key: str) -> str:
        return "/".join(str(v) for v in sorted({r[key] for r in rows}, key=str))
    return f"{vals('schedule')}, batch {vals('batch_size')}"


def budget_verdicts(rows: Sequence[Mapping[str, Any]], *, tol: float = 0.02, task0_bar: float = 0.85
                    ) -> list[dict[str, Any]]:
    """The study's criterion for every budget against the longest one (rows of :func:`budget_table`, one lr).

    A budget passes when its task-0 mIoU(bg) is at least ``task0_bar``, every final metric of
    :data:`CRITERION_METRICS` of every method is within ``tol`` of the same method at the longest budget, and
    the methods rank the same by final mIoU(bg). Only methods present at every budget are compared; several
    seeds of one (budget, method) are averaged.
    """
    if not 0 < tol < 1:
        raise ValueError(f"tol must be in (0, 1), got {tol!r}")
    rows = [r for r in rows if r.get("lr_next") is None]
    budgets = sorted({r["epochs"] for r in rows})
    if len(budgets) < 2:
        raise ValueError(f"the criterion compares budgets: need runs at 2 or more budgets, got {budgets}")
    by: dict[tuple[int, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["epochs"], r["method"]), []).append(r)
    methods = sorted(set.intersection(*({m for (e, m) in by if e == b} for b in budgets)))
    if not methods:
        raise ValueError("no method was run at every budget")
    mean = {k: {m: statistics.fmean(x[m] for x in v) for m in (*CRITERION_METRICS, "task0_miou_bg")}
            for k, v in by.items()}
    longest = budgets[-1]
    rank = lambda e: sorted(methods, key=lambda m: mean[(e, m)]["miou_bg"])  # noqa: E731
    out = []
    for e in budgets:
        gaps = {(m, k): mean[(e, m)][k] - mean[(longest, m)][k] for m in methods for k in CRITERION_METRICS}
        (wm, wk), worst = max(gaps.items(), key=lambda kv: abs(kv[1]))
        task0 = statistics.fmean(mean[(e, m)]["task0_miou_bg"] for m in methods)
        same_rank = rank(e) == rank(longest)
        out.append({"epochs": e, "task0_miou_bg": task0, "worst_gap": worst, "worst": f"{wm}.{wk}",
                    "ranking": rank(e), "same_ranking": same_rank,
                    "passes": task0 >= task0_bar and abs(worst) <= tol and same_rank})
    return out


def cmd_budgets(a: argparse.Namespace) -> int:
    from cemnist_data.viz.figures import new_figure, save_figure

    rows = budget_table(a.runs)
    if not rows:
        raise ValueError(f"no validation runs in {a.runs}")
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    print("| epochs/task | peak lr (task 0 / later) | method | seed | task-0 mIoU(bg) | final mIoU(bg) | final mIoU "
          "| old | new | forgetting/task | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for x in rows:
        lrs = f"{x['lr']:g} / {(x['lr_next'] or x['lr']):g}"
        print(f"| {x['epochs']} | {lrs} | {x['method']} | {x['seed']} | {fmt(x['task0_miou_bg'])} | {fmt(x['miou_bg'])} | "
              f"{fmt(x['miou'])} | {fmt(x['old'])} | {fmt(x['new'])} | {fmt(x['forgetting_task'])} | {x['wall_s']:.0f} |")
    if len({x["epochs"] for x in rows if x["lr_next"] is None}) > 1:
        print(f"\nCriterion: task-0 mIoU(bg) >= {a.task0_bar}; every final metric ({', '.join(CRITERION_METRICS)}) of "
              f"every method within {a.tol} of the longest budget; the same ranking by final mIoU(bg).\n")
        print("| epochs/task | task-0 mIoU(bg) | largest gap to the longest budget | ranking (low → high) | passes |")
        print("|---|---|---|---|---|")
        verdicts = budget_verdicts(rows, tol=a.tol, task0_bar=a.task0_bar)
        for v in verdicts:
            print(f"| {v['epochs']} | {v['task0_miou_bg']:.3f} | {v['worst_gap']:+.3f} ({v['worst']}) | "
                  f"{' < '.join(v['ranking'])} | {'yes' if v['passes'] else 'no'} |")
        ok = [v["epochs"] for v in verdicts[:-1] if v["passes"]]
        print(f"\nsmallest budget that meets the criterion: {ok[0] if ok else 'none below the longest'}")
    if a.out:
        fig = new_figure(7, 4.2)
        ax = fig.add_subplot(1, 1, 1)
        for m in sorted({x["method"] for x in rows}):
            pts = sorted((x["epochs"], x["miou_bg"]) for x in rows if x["method"] == m and x["lr_next"] is None)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=m)
        ax.set_xscale("log", base=2)
        ticks = sorted({x["epochs"] for x in rows})
        ax.set_xticks(ticks, [str(e) for e in ticks])
        ax.minorticks_off()
        ax.set_xlabel(f"epochs per task ({budget_axis_note(rows)})")
        ax.set_ylabel("final validation mIoU (bg)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title("Whole 5-task runs at several budgets (validation pool, seed 0)")
        save_figure(fig, a.out)
        print(f"wrote {a.out}")
    return 0


def pod_scale(old: SimpleSegNet, new: SimpleSegNet, x: torch.Tensor, y: torch.Tensor, *, c_old: int,
              pod_factor: float, pod_logits_factor: float) -> dict[str, Any]:
    """How PLOP's POD term (with the given factors; the method's are ``METHODS["plop"]``) weighs against
    cross-entropy between two models on images ``x`` (float [B, 1, H, W]) with current targets ``y`` (channels,
    255 = ignore). Returns per distilled map (``PLOP_MAPS`` and ``logits``) its contribution to the POD loss
    (the terms sum to it) and the maps' RMS in the old and the new model, the POD loss and the new model's plain
    CE on ``y``."""
    from .losses import local_pod_terms
    from .methods import PLOP_MAPS

    with torch.no_grad():
        t, of = old.forward_features(x)
        z, nf = new.forward_features(x)
        names = list(PLOP_MAPS)
        n = new.num_classes
        terms = local_pod_terms([of[k] for k in names] + [t], [nf[k] for k in names] + [z], c_old=c_old,
                                n_classes=n, n_new=n - c_old, factor=pod_factor, logits_factor=pod_logits_factor)
        maps = {k: (of[k], nf[k]) for k in names} | {"logits": (t, z)}
        layers = {k: {"pod": float(term) / len(terms), "rms_old": float(a.pow(2).mean().sqrt()),
                      "rms_new": float(b.pow(2).mean().sqrt())} for (k, (a, b)), term in zip(maps.items(), terms)}
        ce = float(torch.nn.functional.cross_entropy(z.float(), y, ignore_index=255))
    return {"layers": layers, "pod": sum(v["pod"] for v in layers.values()), "ce": ce}


def cmd_pod_scale(a: argparse.Namespace) -> int:
    from .checkpoints import load_checkpoint, task_checkpoints

    root = Path(a.checkpoints)
    if a.task < 1:
        raise ValueError(f"--task must be >= 1 (POD compares a task's model with the previous one), got {a.task}")
    tasks = resolve_tasks(a.setting, None, dataset_info(cache_dir=a.cache_dir))
    if a.task >= len(tasks):
        raise ValueError(f"--task must be in 1..{len(tasks) - 1} for setting {a.setting}, got {a.task}")
    imgs, masks = load_task_data(task=a.task, split="train", mode=a.mode, limit=a.n, cache_dir=a.cache_dir)
    lut, _ = label_maps(tasks, a.task, torch.device("cpu"))
    x, y = imgs.float().div(255)[:, None], lut[masks.long()]
    ref = METHODS["plop"]

    def model_at(run: Path, task: int) -> SimpleSegNet:
        f = task_checkpoints(run).get(task)
        if f is None:
            raise ValueError(f"{run} holds no checkpoint of task {task}: run "
                             f"`cemnist-baselines run --method {run.name.split('-')[0]} "
                             f"--seeds {a.seed} --mode {a.mode} --out <results>` first (checkpoints are kept there)")
        w, _, _, _ = load_checkpoint(f)
        m = SimpleSegNet(w["head.weight"].shape[0], width=w["head.weight"].shape[1])
        m.load_state_dict(w)
        return m.eval()

    rows = []
    for meth in a.methods:
        run = root / f"{meth}-{a.setting}-{a.mode}-seed{a.seed}"
        old, new = model_at(run, a.task - 1), model_at(run, a.task)
        rows.append((meth, pod_scale(old, new, x, y, c_old=old.num_classes, pod_factor=ref.pod_factor,
                                     pod_logits_factor=ref.pod_logits_factor)))
    names = list(rows[0][1]["layers"])
    print(f"PLOP's POD term (pod_factor {ref.pod_factor:g}, logits {ref.pod_logits_factor:g}, schedule on) between "
          f"each run's models before and after task {a.task} ({a.setting} {a.mode}, seed {a.seed}, first {x.shape[0]} "
          f"training images of the task); per map its share of the POD loss, RMS old → new.\n")
    print("| run | " + " | ".join(names) + " | POD loss | CE on the task's masks |")
    print("|---|" + "---|" * (len(names) + 2))
    for meth, r in rows:
        cells = [f"{r['layers'][k]['pod']:.3g} ({r['layers'][k]['rms_old']:.2f} → {r['layers'][k]['rms_new']:.2f})"
                 for k in names]
        print(f"| {meth} | " + " | ".join(cells) + f" | {r['pod']:.3g} | {r['ce']:.3f} |")
    return 0


def plop_threshold_report(old: SimpleSegNet, x: torch.Tensor, bg: torch.Tensor, *, n_classes: int,
                          base: float = 0.001, nb_bins: int = 100) -> list[dict[str, float]]:
    """Per old class, PLOP's entropy statistics of the background pixels ``bg`` [B, H, W] on images ``x``
    (float [B, 1, H, W]) under the old model: pixel count, share in the histogram's first bin, the true median
    of the normalised entropy, the bin holding it, and the threshold PLOP's ``find_median`` loop gives
    (:func:`cemnist_baselines.methods.plop_find_median`)."""
    from .losses import plop_entropy, plop_find_median, plop_histogram

    with torch.no_grad():
        logits = old(x)
    hist = plop_histogram(logits, bg, n_classes=n_classes, nb_bins=nb_bins)
    th = plop_find_median(hist, base=base)
    p = torch.softmax(logits.float(), dim=1)
    ent = (plop_entropy(p) / math.log(n_classes))[bg]
    cls = p.argmax(dim=1)[bg]
    out = []
    for c in range(hist.shape[0]):
        vals = ent[cls == c]
        n = int(hist[c].sum())
        med = float(vals.median()) if n else float("nan")
        out.append({"pixels": n, "first_bin_share": float(hist[c, 0]) / n if n else float("nan"),
                    "median": med, "median_bin": min(int(med * nb_bins), nb_bins - 1) if n else -1,
                    "plop_threshold": float(th[c])})
    return out


def cmd_plop_thresholds(a: argparse.Namespace) -> int:
    from .checkpoints import load_checkpoint

    tasks = resolve_tasks(a.setting, None, dataset_info(cache_dir=a.cache_dir))
    if not 1 <= a.task < len(tasks):
        raise ValueError(f"--task must be in 1..{len(tasks) - 1} for setting {a.setting}, got {a.task}")
    f = Path(a.checkpoint)
    if not f.is_file():
        raise ValueError(f"{f} does not exist: the old model's checkpoint (task{a.task - 1}.safetensors of a run)")
    w, _, _, _ = load_checkpoint(f)
    old = SimpleSegNet(w["head.weight"].shape[0], width=w["head.weight"].shape[1])
    old.load_state_dict(w)
    old.eval()
    imgs, masks = load_task_data(task=a.task, split="train", mode=a.mode, limit=a.n, cache_dir=a.cache_dir)
    lut, _ = label_maps(tasks, a.task, torch.device("cpu"))
    n_classes = 1 + sum(len(ts) for ts in tasks[: a.task + 1])
    rows = plop_threshold_report(old, imgs.float().div(255)[:, None], lut[masks.long()] == 0, n_classes=n_classes)
    print(f"PLOP's entropy thresholds before task {a.task} ({a.setting} {a.mode}, old model {f}, "
          f"{imgs.shape[0]} training images; background pixels by the old model's class)\n")
    print("| old class | pixels | in the first bin | median entropy (bin) | PLOP's find_median |")
    print("|---|---|---|---|---|")
    for c, r in enumerate(rows):
        print(f"| {c} | {r['pixels']:,} | {r['first_bin_share']:.1%} | {r['median']:.4f} ({r['median_bin']}) | "
              f"{r['plop_threshold']:.4g} |")
    return 0


def prediction_shares(conf: torch.Tensor, digits: Sequence[int]) -> torch.Tensor:
    """Where the pixels of ``digits`` go: shares [11] over predicted labels (0 = background, d + 1 = digit d)
    of a label-space confusion [11, 11] (true × predicted), summed over those digits' rows."""
    if conf.shape != (11, 11):
        raise ValueError(f"expected an 11x11 label-space confusion, got {tuple(conf.shape)}")
    bad = [d for d in digits if not 0 <= d <= 9]
    if bad or not digits:
        raise ValueError(f"digits must be a non-empty list of 0..9, got {list(digits)}")
    rows = conf[[d + 1 for d in digits]].to(torch.float64).sum(dim=0)
    if rows.sum() <= 0:
        raise ValueError(f"no pixels of digits {list(digits)} in the confusion")
    return rows / rows.sum()


def cmd_where(a: argparse.Namespace) -> int:
    from .results import load_results

    if a.task < 0:
        raise ValueError(f"--task must be >= 0, got {a.task}")
    runs = sorted((r for r in load_results(a.results) if r["method"] == a.method and r["mode"] == a.mode
                   and r["setting"] == a.setting), key=lambda r: int(r["seed"]))
    if not runs:
        raise ValueError(f"no {a.method} {a.setting} {a.mode} runs in {a.results}")
    print(f"Where the test-pool pixels of digits {' '.join(map(str, a.digits))} go after task {a.task} "
          f"({a.method}, {a.setting} {a.mode}; shares of the predicted labels, from each run's stored confusion)\n")
    print("| seed | bg | " + " | ".join(str(d) for d in range(10)) + " |")
    print("|---|" + "---|" * 11)
    for r in runs:
        records = r["steps"]  # one per trained task (cemnist_baselines.results)
        if a.task >= len(records):
            raise ValueError(f"{r.get('_path', r['method'])}: no record of task {a.task} (it has {len(records)})")
        sh = prediction_shares(torch.tensor(records[a.task]["confusion"]), a.digits)
        print(f"| {r['seed']} | " + " | ".join(f"{float(v):.3f}" for v in sh) + " |")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cemnist_baselines.study", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("task0", help="task-0 validation curves for grid points")
    t.add_argument("--out", required=True)
    t.add_argument("--grid", nargs="*", default=None, help=f"grid points (default all): {', '.join(GRID)}")
    t.add_argument("--seeds", nargs="+", type=int, default=[0])
    t.add_argument("--precision", nargs="+", choices=["fp32", "bf16"], default=["bf16"])
    t.add_argument("--cache-dir", default=None)
    pl = sub.add_parser("plot", help="plot task-0 curves")
    pl.add_argument("--results", required=True)
    pl.add_argument("--out", required=True)
    pl.add_argument("--precision", default="bf16")
    pl.add_argument("--seed", type=int, default=0)
    tb = sub.add_parser("table", help="every task-0 result in a folder, and mean ± std over seeds")
    tb.add_argument("--results", required=True)
    b = sub.add_parser("budgets", help="table (and plot) of whole validation runs at several budgets")
    b.add_argument("--runs", nargs="+", required=True, help="result folders of validation runs")
    b.add_argument("--out", default=None, help="PNG of final validation mIoU(bg) vs epochs per task")
    b.add_argument("--tol", type=float, default=0.02, help="largest allowed gap to the longest budget")
    b.add_argument("--task0-bar", type=float, default=0.85, help="task-0 validation mIoU(bg) a budget must reach")
    ps = sub.add_parser("pod-scale", help="PLOP's POD term per distilled map vs CE, from a results folder's checkpoints")
    ps.add_argument("--checkpoints", required=True, help="a results folder's checkpoints/ (e.g. results/v1/checkpoints)")
    ps.add_argument("--methods", nargs="+", default=["naive", "plop"], help="runs to read (their own old model)")
    ps.add_argument("--mode", choices=["overlap", "disjoint"], default="overlap")
    ps.add_argument("--setting", default="2-2")
    ps.add_argument("--seed", type=int, default=0)
    ps.add_argument("--task", type=int, default=1)
    ps.add_argument("--n", type=int, default=256, help="first N training images of the task")
    ps.add_argument("--cache-dir", default=None)
    pt = sub.add_parser("plop-thresholds", help="PLOP's entropy thresholds for a task from the old model's checkpoint")
    pt.add_argument("--checkpoint", required=True, help="the old model: a run's task<task-1>.safetensors")
    pt.add_argument("--mode", choices=["overlap", "disjoint"], default="overlap")
    pt.add_argument("--setting", default="2-2")
    pt.add_argument("--task", type=int, default=1)
    pt.add_argument("--n", type=int, default=None, help="first N training images of the task (default all)")
    pt.add_argument("--cache-dir", default=None)
    w = sub.add_parser("where", help="where the pixels of some digits go after a task (from stored confusions)")
    w.add_argument("--results", required=True)
    w.add_argument("--method", required=True)
    w.add_argument("--mode", choices=["overlap", "disjoint"], default="overlap")
    w.add_argument("--setting", default="2-2")
    w.add_argument("--task", "--step", dest="task", type=int, default=0,
                   help="the task after which to look (--step: its older name)")
    w.add_argument("--digits", type=int, nargs="+", required=True)
    a = p.parse_args(argv)
    try:
        return {"task0": cmd_task0, "plot": cmd_plot, "table": cmd_table, "budgets": cmd_budgets,
                "pod-scale": cmd_pod_scale, "plop-thresholds": cmd_plop_thresholds, "where": cmd_where}[a.cmd](a)
    except ValueError as e:
        print(f"study: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""argparse glue: ``show``, ``preview`` and ``report`` subcommands for the ``cemnist`` CLI.

Hook-up in ``cemnist_data/cli.py``::

    from cemnist_data.viz.cli import add_cli_subcommands
    add_cli_subcommands(subparsers)   # each subcommand sets ``func``: ``return args.func(args)``

Only this module touches the dataset loader; all drawing functions take plain numpy arrays.
Also runnable on its own: ``python -m cemnist_data.viz {show,preview,report} ...``.
"""
from __future__ import annotations

import argparse
import re
import sys
import warnings
from typing import Any, Sequence

import numpy as np

from ..spec import config_name


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def load_columns(path: str, *, config: str, split: str, columns: Sequence[str],
                 cache_dir: str | None = None) -> list[np.ndarray]:
    """Load ``columns`` of one config/split through ``cemnist_data.load_tensors`` as numpy arrays."""
    from cemnist_data import load_tensors  # the dataset API (docs/INTERFACES.md)

    out = load_tensors(path, config=config, split=split, columns=tuple(columns), cache_dir=cache_dir)
    return [_to_numpy(t) for t in out]


def release_info_or_none(path: str, *, cache_dir: str | None = None) -> dict[str, Any] | None:
    """``cemnist_data.release_info``, or None with a warning when it cannot be found or read (it only names
    tasks in titles). Integrity errors are not caught: a corrupted release must stop the command."""
    from cemnist_data import release_info

    try:
        return release_info(path, cache_dir=cache_dir)
    except (OSError, ValueError) as e:
        warnings.warn(f"release info for {path!r} unavailable ({e}); titles will not name the task digits",
                      stacklevel=2)
        return None


def labelled_digits(config: str, info: dict[str, Any] | None) -> list[int] | None:
    """Digits labelled in the train view of ``config`` (``overlap-task1`` -> tasks[1]; ``joint`` -> all)."""
    if info is None or "tasks" not in info:
        return None
    m = re.fullmatch(r"(overlap|disjoint)-task(\d+)", config)
    if m:
        t = int(m.group(2))
        return list(info["tasks"][t]) if t < len(info["tasks"]) else None
    if config == "joint":
        return [d for t in info["tasks"] for d in t]
    return None


def pick_indices(n_rows: int, *, num: int, seed: int, candidates: np.ndarray | None = None) -> np.ndarray:
    """``num`` distinct sorted row indices drawn with ``numpy.random.default_rng(seed)``."""
    if num <= 0:
        raise ValueError(f"number of samples must be positive, got {num}")
    pool = np.arange(n_rows) if candidates is None else np.asarray(candidates)
    if pool.size == 0:
        raise ValueError("no rows to sample from")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(pool, size=min(num, pool.size), replace=False))


def cmd_show(args: argparse.Namespace) -> int:
    """``cemnist show``: montage of samples (train view or full masks) or the view comparison."""
    from .montage import show, show_compare

    info = release_info_or_none(args.path, cache_dir=args.cache_dir)
    cols = ("image", "mask", "full_mask")
    images, masks, full = load_columns(args.path, config=args.config, split=args.split, columns=cols,
                                       cache_dir=args.cache_dir)
    digits = labelled_digits(args.config, info)
    head = f"CEMNIST {args.config} / {args.split}"
    if info:
        head += f" · v{info.get('version', '?')} setting {info.get('setting', '?')}"
    if args.indices:
        idx = np.array(sorted(set(args.indices)))
        if idx.max() >= len(images) or idx.min() < 0:
            raise SystemExit(f"--indices must lie in 0..{len(images) - 1}")
    elif args.view == "compare":
        differs = np.nonzero((masks != full).reshape(len(masks), -1).any(axis=1))[0]
        idx = pick_indices(len(images), num=min(args.num, 4), seed=args.seed,
                           candidates=differs if differs.size else None)
    else:
        idx = pick_indices(len(images), num=args.num, seed=args.seed)
    if args.view == "compare":
        lab = f"train view labels digits {','.join(map(str, digits))}" if digits else "train view"
        out = show_compare(images[idx], masks[idx], full[idx], out=args.out, title=f"{head}\n{lab} vs full mask")
    else:
        m = masks if args.view == "train" else full
        what = ("train view" + (f" (digits {','.join(map(str, digits))} labelled)" if digits else "")
                if args.view == "train" else "full masks (all digits labelled)")
        caps = [f"#{i}" for i in idx] if args.captions == "index" else None
        out = show(images[idx], m[idx], out=args.out, title=f"{head}: {what}", ncols=args.ncols, captions=caps)
    print(out)
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    """``cemnist preview``: the per-task preview strip (one row per task)."""
    from .montage import preview_strip

    info = release_info_or_none(args.path, cache_dir=args.cache_dir)
    if info is None:
        raise SystemExit("cemnist preview needs cemnist_data.release_info to list the tasks")
    rows, labels = [], []
    for t, digits in enumerate(info["tasks"]):
        images, masks = load_columns(args.path, config=config_name(args.mode, t), split=args.split,
                                     columns=("image", "mask"), cache_dir=args.cache_dir)
        idx = pick_indices(len(images), num=args.per_task, seed=args.seed + t)
        rows.append((images[idx], masks[idx]))
        labels.append(f"task {t}\ndigits {','.join(map(str, digits))}")
    title = (f"CEMNIST v{info.get('version', '?')} · setting {info.get('setting', '?')} · {args.mode} · "
             f"{args.split} samples with their train-view masks")
    print(preview_strip(rows, out=args.out, row_labels=labels, title=title))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``cemnist report ARGS``: forwarded to ``cemnist-baselines report ARGS`` (the report lives with the
    results, in ``cemnist_baselines``; the data package does not import it). Returns its exit status."""
    import subprocess

    return subprocess.call([sys.executable, "-m", "cemnist_baselines", "report", *args.report_args])


def add_cli_subcommands(subparsers: Any) -> None:
    """Register ``show``, ``preview`` and ``report`` on an argparse subparsers object."""
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--path", default="cemnist", help="dataset repo id or local folder (default: cemnist)")
        p.add_argument("--cache-dir", default=None, help="dataset cache directory")
        p.add_argument("--split", default="train", choices=("train", "validation", "test"), help="split to draw from")
        p.add_argument("--seed", type=int, default=0, help="seed for picking samples (default 0)")

    p = subparsers.add_parser("show", help="montage of samples with masks overlaid (needs cemnist[viz])",
                              description="Montage of samples with masks overlaid in the fixed CEMNIST palette.")
    common(p)
    p.add_argument("--config", default="overlap-task0", help="overlap-task{t}, disjoint-task{t} or joint")
    p.add_argument("-n", "--num", type=int, default=16, help="number of samples (compare mode: at most 4)")
    p.add_argument("--indices", type=int, nargs="+", default=None, help="explicit row indices instead of sampling")
    p.add_argument("--view", choices=("train", "full", "compare"), default="train",
                   help="train: task-view masks (background shift); full: full masks; "
                        "compare: task view vs full mask side by side (--mode elsewhere means overlap/disjoint)")
    p.add_argument("--ncols", type=int, default=8, help="montage columns (default 8)")
    p.add_argument("--captions", choices=("digits", "index"), default="digits",
                   help="caption each panel with its digits or its row index")
    p.add_argument("--out", default="cemnist_show.png", help="output PNG")
    p.set_defaults(func=cmd_show)

    p = subparsers.add_parser("preview", help="per-task preview strip (needs cemnist[viz])",
                              description="One row per task: a few samples with their train-view masks.")
    common(p)
    p.add_argument("--mode", choices=("overlap", "disjoint"), default="overlap", help="the task split's mode")
    p.add_argument("--per-task", type=int, default=6, help="samples per task row (default 6)")
    p.add_argument("--out", default="docs/img/preview_strip.png", help="output PNG")
    p.set_defaults(func=cmd_preview)

    p = subparsers.add_parser("report", help="plots, animations and one self-contained HTML page for a results folder "
                                             "(= cemnist-baselines report; see its --help)",
                              add_help=False, prefix_chars="\x00",  # every argument, --help too, is forwarded
                              description="Forwarded to `cemnist-baselines report`, which renders a results folder "
                                          "(run JSONs, optional traces) into PNG/GIF files and a self-contained "
                                          "index.html.")
    p.add_argument("report_args", nargs="*", help="the arguments of `cemnist-baselines report`")
    p.set_defaults(func=cmd_report)


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m cemnist_data.viz``."""
    parser = argparse.ArgumentParser(prog="python -m cemnist_data.viz", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_cli_subcommands(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``cemnist-baselines``: run baselines, build the leaderboard, check the quality targets, draw the report.

  cemnist-baselines run --method mib --seeds 0 1 2 [--jobs K] [--preset tiny] [--device auto|cpu|cuda[:N]]
                        [--out DIR] [--resume] [--trace] [--overwrite]
  cemnist-baselines run --method all                    # every built-in method (the board's rows)
  cemnist-baselines run --method my_package.my_module:MyMethod   # your own Method subclass
  cemnist-baselines leaderboard --results DIR [DIR ...] [--out DIR] [--readme README.md]   # validated runs only
  cemnist-baselines validate RESULT.json [...]  # schema, dataset hashes, protocol, confusions, metrics
  cemnist-baselines targets --results DIR [--preset default] [--mode overlap] [--device cpu]
  cemnist-baselines compare --reference results/v1 --results DIR [--mode overlap]   # a re-run vs the board
  cemnist-baselines progress --results DIR     # per-task metrics of unfinished runs, from their checkpoints
  cemnist-baselines report DIR [--out DIR]     # plots, GIFs and one HTML page (needs cemnist[viz])
  cemnist-baselines export RUN_OR_FOLDER --out DIR [--push OWNER/NAME]   # a Hub model repo with .eval_results/

Options of every command: -v / -vv (the cemnist logger on stderr); `run --quiet` (alias --no-progress).
Exit status: 0 success, 1 unmet targets / failed checks / the Hub unreachable (export --push) / a full disk, 2 bad
arguments or unusable inputs (as in `cemnist`: an input folder that does not exist is 2).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings
from pathlib import Path

from cemnist_data.cli import setup_logging
from cemnist_data.progress import progress_enabled

from .errors import WriteError
from .config import DEFAULT_SEEDS, EVAL_SPLITS, PRESETS, SCHEDULES, get_config


def _parser() -> argparse.ArgumentParser:
    """The ``cemnist-baselines`` parser: one ``_add_*`` function per command, in the order of ``--help``."""
    from cemnist_data.cli import verbosity_parent, with_parent

    from . import __version__

    verbose = verbosity_parent()
    p = argparse.ArgumentParser(prog="cemnist-baselines", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter, parents=[verbose])
    p.add_argument("--version", action="version", version=f"cemnist-baselines {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    with_parent(sub, verbose)
    for add in (_add_run, _add_leaderboard, _add_validate, _add_targets, _add_compare, _add_progress, _add_report,
                _add_export):
        add(sub)
    return p


def _add_run(sub: argparse._SubParsersAction) -> None:
    """The ``run`` command's options."""
    r = sub.add_parser("run", help="train methods x seeds, write result JSONs and the leaderboard")
    r.add_argument("--method", nargs="+", default=["all"],
                   help="naive kd lwf ilt pl mib plop plop_tuned replay joint, all (= every built-in, the default), an "
                        "installed plug-in's name, or module:Class (your own Method subclass)")
    r.add_argument("--seeds", nargs="+", type=int, default=None, help="default: 0 1 2 (default, long), 0 (tiny)")
    r.add_argument("--preset", default="default", choices=sorted(PRESETS))
    r.add_argument("--device", default="auto",
                   help="auto | cpu | cuda[:N]; with --jobs, cuda (no index) spreads the workers over the GPUs")
    r.add_argument("--jobs", type=int, default=1,
                   help="concurrent runs in separate processes (several may share one GPU)")
    r.add_argument("--out", default=None, help="output folder (default runs/<preset>)")
    r.add_argument("--resume", action="store_true", help="continue from the last finished task of each run")
    r.add_argument("--overwrite", action="store_true",
                   help="replace runs in --out of the same method/seed written with another config")
    r.add_argument("--trace", action="store_true", help="record per-epoch pool confusions and prediction panels")
    r.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                   help="no progress bar (also: TQDM_DISABLE=1, HF_DATASETS_DISABLE_PROGRESS_BARS=1)")
    r.add_argument("--setting", default=None, help="digits per task, e.g. 2-2 (must match the dataset release)")
    r.add_argument("--mode", default=None, choices=["overlap", "disjoint"])
    r.add_argument("--epochs", type=int, default=None, help="epochs per task (>= 1)")
    r.add_argument("--batch-size", type=int, default=None, help="training batch size (>= 1)")
    r.add_argument("--lr", type=float, default=None, help="peak learning rate, in (0, 1]")
    r.add_argument("--lr-next", type=float, default=None, help="peak learning rate of tasks after the first, in (0, 1]")
    r.add_argument("--schedule", default=None, choices=SCHEDULES, help="learning-rate schedule per task")
    r.add_argument("--warmup", type=float, default=None, help="fraction of a task's steps spent warming up")
    r.add_argument("--kd-lambda", type=float, default=None, help="weight of the distillation term (kd, mib), in [0, 10000]")
    r.add_argument("--eval-split", default=None, choices=EVAL_SPLITS,
                   help="fixed evaluation pool: test (the leaderboard) or validation (tuning)")
    r.add_argument("--max-train", type=int, default=None, help="first N train images of every task (>= 1)")
    r.add_argument("--max-test", type=int, default=None, help="one fixed subset of N pool images (>= 1)")
    r.add_argument("--precision", default=None, choices=["fp32", "bf16"], help="bf16 = bf16 autocast")
    r.add_argument("--amp", action="store_true", default=None, help="same as --precision bf16")
    r.add_argument("--compile", dest="compile", action="store_true", default=None, help="torch.compile the training step (default: off)")
    r.add_argument("--no-compile", dest="compile", action="store_false", help="do not compile (default)")
    r.add_argument("--cuda-graphs", action="store_true", default=None, help="capture the compiled step in CUDA graphs (implies --compile; CUDA only)")
    r.add_argument("--deterministic", action="store_true", default=None,
                   help="CUDA: cuDNN benchmarking off, deterministic algorithms (reruns on the same GPU, cuDNN and "
                        "torch give the same numbers; slower). CPU runs are deterministic without it")
    r.add_argument("--no-teacher-cache", dest="teacher_cache", action="store_false", default=None,
                   help="run the old model on every batch instead of caching its logits once per task")
    r.add_argument("--cache-dir", default=None, help="dataset cache (default $CEMNIST_CACHE or ~/.cache/cemnist)")


def _add_leaderboard(sub: argparse._SubParsersAction) -> None:
    """The ``leaderboard`` command's options."""
    lb = sub.add_parser("leaderboard", help="aggregate validated result JSONs into LEADERBOARD.md, leaderboard.csv "
                                            "and results.parquet (+ README.md YAML for datasets.load_dataset)")
    lb.add_argument("--results", required=True, nargs="+", help="folder(s) of result JSONs (yours and others')")
    lb.add_argument("--out", default=None, help="default: the results folder (required with several folders)")
    lb.add_argument("--readme", default=None, metavar="README.md",
                    help="also replace the tables between the leaderboard markers of this file")


def _add_validate(sub: argparse._SubParsersAction) -> None:
    """The ``validate`` command's options."""
    va = sub.add_parser("validate", help="check result JSONs: schema, dataset hashes, protocol, confusions, metrics")
    va.add_argument("paths", nargs="+", help="result JSON files or folders of them")


def _add_targets(sub: argparse._SubParsersAction) -> None:
    """The ``targets`` command's options."""
    tg = sub.add_parser("targets", help="check the quality targets (targets.csv) on a results folder")
    tg.add_argument("--results", required=True, help="folder of result JSONs")
    tg.add_argument("--preset", default="default", choices=sorted(PRESETS), help="the protocol to check")
    tg.add_argument("--setting", default="2-2")
    tg.add_argument("--mode", default="overlap", choices=["overlap", "disjoint"])
    tg.add_argument("--device", default=None, help="only rows of this device type (cpu, cuda)")


def _add_compare(sub: argparse._SubParsersAction) -> None:
    """The ``compare`` command's options."""
    cp = sub.add_parser("compare", help="a re-run (another device, another machine) against a reference board")
    cp.add_argument("--reference", required=True, help="folder of the reference board's result JSONs (results/v1)")
    cp.add_argument("--results", required=True, help="folder of the re-run's result JSONs")
    cp.add_argument("--preset", default="default", choices=sorted(PRESETS), help="the protocol to compare")
    cp.add_argument("--setting", default="2-2")
    cp.add_argument("--mode", default="overlap", choices=["overlap", "disjoint"])
    cp.add_argument("--reference-device", default=None, help="only reference rows of this device type")
    cp.add_argument("--device", default=None, help="only re-run rows of this device type (cpu, cuda)")
    cp.add_argument("--metrics", nargs="+", default=["future_bg.miou_bg", "future_bg.first"],
                    help="leaderboard columns to compare")
    cp.add_argument("--k", type=float, default=3.0, help="tolerance: k x the reference seed std ...")
    cp.add_argument("--floor", type=float, default=0.03, help="... but at least this")


def _add_progress(sub: argparse._SubParsersAction) -> None:
    """The ``progress`` command's options."""
    pg = sub.add_parser("progress", help="per-task metrics of (unfinished) runs, read from their checkpoints")
    pg.add_argument("--results", required=True, help="folder of a run group")


def _add_report(sub: argparse._SubParsersAction) -> None:
    """The ``report`` command's options."""
    rp = sub.add_parser("report", help="plots, GIF animations and one self-contained HTML page (needs cemnist[viz])")
    rp.add_argument("results", help="folder of result JSONs (and traces)")
    rp.add_argument("--out", default=None, help="output folder (default RESULTS/report)")
    rp.add_argument("--preview", default=None, help="dataset preview PNG to embed (from `cemnist preview`)")
    rp.add_argument("--title", default="CEMNIST results", help="page title")
    rp.add_argument("--all-seeds", action="store_true", help="animate every seed, not only the lowest")
    rp.add_argument("--every", type=int, default=1, help="confusion GIF: draw every k-th epoch (task ends always)")
    rp.add_argument("--max-frames", type=int, default=60, help="GIF frame cap (default 60)")
    rp.add_argument("--max-gif-mb", type=float, default=5.0, help="GIF size cap in MB (default 5)")


def _add_export(sub: argparse._SubParsersAction) -> None:
    """The ``export`` command's options."""
    ex = sub.add_parser("export", help="a run as a Hub model repo folder: safetensors weights, model card, its result "
                                       "files and .eval_results/ for the CEMNIST benchmark (--push uploads it)")
    ex.add_argument("source", metavar="RUN_OR_FOLDER", help="a result JSON, or a folder of them (choose with --method, "
                                                              "--mode, --seed)")
    ex.add_argument("--out", required=True, help="the model repo folder to write (new, empty, or an earlier export "
                                                 "with --overwrite)")
    ex.add_argument("--method", default=None, help="in a folder: the method of the row to export")
    ex.add_argument("--mode", default=None, choices=["overlap", "disjoint"], help="in a folder: the mode of the row")
    ex.add_argument("--seed", type=int, default=None, help="the seed whose checkpoint is exported (default: the "
                                                           "row's lowest)")
    ex.add_argument("--checkpoints", default=None, help="the run's checkpoints folder, if not RUN_FOLDER/checkpoints")
    ex.add_argument("--benchmark", default=None, help="the benchmark dataset id (default cemnist/cemnist)")
    ex.add_argument("--repo-id", default=None, help="the model repo the folder is for (links; default: --push's)")
    ex.add_argument("--push", default=None, metavar="OWNER/NAME",
                    help="upload the folder to this Hub model repo (created with the Hub's default visibility)")
    ex.add_argument("--private", action="store_true", help="with --push: create the repo as private")
    ex.add_argument("--overwrite", action="store_true", help="replace the files of an earlier export in --out")


def cmd_run(a: argparse.Namespace, command: str) -> int:
    """``cemnist-baselines run``; returns the exit status."""
    from .leaderboard import check_table_readme, load_validated, write_board
    from .runner import run_many
    if a.amp and a.precision == "fp32":
        raise ValueError("--amp contradicts --precision fp32")
    amp = True if a.amp else (None if a.precision is None else a.precision == "bf16")
    cfg = get_config(a.preset, setting=a.setting, mode=a.mode, epochs=a.epochs, batch_size=a.batch_size,
                     lr=a.lr, lr_next=a.lr_next, schedule=a.schedule, warmup=a.warmup, kd_lambda=a.kd_lambda,
                     eval_split=a.eval_split, max_train=a.max_train, max_test=a.max_test,
                     compile=a.compile, cuda_graphs=a.cuda_graphs, amp_bf16=amp, teacher_cache=a.teacher_cache,
                     deterministic=a.deterministic)
    seeds = a.seeds if a.seeds is not None else list(DEFAULT_SEEDS[a.preset])
    out = Path(a.out or f"runs/{a.preset}")
    check_table_readme(out)  # the board's README must be usable: refuse now, not after the training
    t0 = time.perf_counter()
    results = run_many(methods=a.method, seeds=seeds, cfg=cfg, out_dir=out, preset=a.preset,
                       device=a.device, jobs=a.jobs, resume=a.resume, overwrite=a.overwrite, trace=a.trace,
                       progress=progress_enabled(not a.quiet), cache_dir=a.cache_dir)
    board, refused = load_validated([out])  # the board holds validated results only, as `leaderboard`'s
    for v in refused:
        for line in v.lines():
            print("refused " + line.removeprefix("FAIL "), file=sys.stderr)
    if not board:
        raise ValueError(f"no valid result JSON in {out} for the board ({len(refused)} refused, see above)")
    md, cs = write_board(board, out, command=command)
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    for r in results:
        f = r["final"]["future_bg"]
        print(f"{r['method']:>6} seed {r['seed']}: final mIoU(bg) {fmt(f['miou_bg'])}  mIoU {fmt(f['miou'])}  "
              f"old {fmt(f['old'])}  new {fmt(f['new'])}")
    print(f"{len(results)} runs in {time.perf_counter() - t0:.1f} s -> {out}/ ; leaderboard: {md} {cs}"
          + (f"; {len(refused)} file(s) refused (see above)" if refused else ""))
    return 1 if refused else 0


def cmd_leaderboard(a: argparse.Namespace, command: str) -> int:
    """``cemnist-baselines leaderboard``; returns the exit status."""
    from .leaderboard import load_validated, write_board
    if len(a.results) > 1 and a.out is None:
        raise ValueError("several --results folders: say where the board goes with --out")
    results, refused = load_validated(a.results)
    for v in refused:
        for line in v.lines():
            print("refused " + line.removeprefix("FAIL "), file=sys.stderr)
    if not results:
        raise ValueError(f"no valid result JSON in {' '.join(a.results)}"
                         + (f" ({len(refused)} refused)" if refused else ""))
    readme = Path(a.readme) if a.readme else None
    md, cs = write_board(results, Path(a.out or a.results[0]), command=command, readme=readme)
    print(md.read_text())
    if readme is not None:
        print(f"updated the leaderboard tables of {readme}")
    print(f"wrote {md}, {cs} and {md.parent / 'results.parquet'}"
          + (f"; {len(refused)} file(s) refused (see above)" if refused else ""))
    return 1 if refused else 0


def cmd_validate(a: argparse.Namespace, command: str) -> int:
    """``cemnist-baselines validate``; returns the exit status."""
    from .data import dataset_info
    from .validate import result_files, validate_file
    files = result_files(a.paths)
    if not files:
        raise ValueError(f"no result JSON in {' '.join(a.paths)}")
    release = dataset_info(path="cemnist")
    checks = [validate_file(f, release=release) for f in files]
    for v in checks:
        print("\n".join(v.lines()))
    n_bad = sum(not v.ok for v in checks)
    print(f"{len(checks) - n_bad} of {len(checks)} result(s) valid")
    return 1 if n_bad else 0


def cmd_progress(a: argparse.Namespace, command: str) -> int:
    """``cemnist-baselines progress``; returns the exit status."""
    from .run_progress import format_progress, run_progress
    print(format_progress(run_progress(a.results)))
    return 0


def cmd_targets(a: argparse.Namespace, command: str) -> int:
    """``cemnist-baselines targets``; returns the exit status."""
    from .leaderboard import aggregate
    from .validate import load_valid_results
    from .targets import check_targets, load_targets
    results = load_valid_results(a.results)
    if not results:
        raise ValueError(f"no result JSON in {a.results}")
    protocol = get_config(a.preset, setting=a.setting, mode=a.mode).protocol()
    checks = check_targets(aggregate(results), load_targets(), protocol=protocol, device=a.device)
    for _, _, ok, msg in checks:
        print(("PASS " if ok else "FAIL ") + msg)
    return 0 if all(ok for _, _, ok, _ in checks) else 1


def cmd_compare(a: argparse.Namespace, command: str) -> int:
    """``cemnist-baselines compare``; returns the exit status."""
    from .leaderboard import aggregate
    from .validate import load_valid_results
    from .targets import compare_boards, select_rows
    protocol = get_config(a.preset, setting=a.setting, mode=a.mode).protocol()
    boards = []
    for folder, device in ((a.reference, a.reference_device), (a.results, a.device)):
        results = load_valid_results(folder)
        if not results:
            raise ValueError(f"no result JSON in {folder}")
        rows = select_rows(aggregate(results), protocol=protocol, device=device)
        if not rows:
            raise ValueError(f"{folder}: no run with the {a.preset} protocol on {a.setting} {a.mode}"
                             + (f" on device {device}" if device else ""))
        boards.append(rows)
    ref, other = boards
    missing = sorted(set(ref) - set(other))
    if missing:
        print(f"not in the re-run (not compared): {', '.join(missing)}")
    extra = sorted(set(other) - set(ref))
    if extra:
        print(f"not on the reference board (not compared): {', '.join(extra)}")
    ref = {m: r for m, r in ref.items() if m in other}
    other = {m: r for m, r in other.items() if m in ref}
    if not ref:
        raise ValueError("the re-run and the reference board have no method in common")
    diffs = compare_boards(ref, other, metrics=tuple(a.metrics), k=a.k, floor=a.floor)
    for d in diffs:
        print("DIFF " + d)
    print(f"{len(other)} method(s) x {len(a.metrics)} metric(s) compared: "
          f"{len(diffs)} difference(s) beyond max({a.k:g} x reference seed std, {a.floor:g})")
    return 1 if diffs else 0


def cmd_export(a: argparse.Namespace, command: str) -> int:
    """``cemnist-baselines export``; returns the exit status."""
    from .export import export_run, push_model_repo
    if a.private and not a.push:
        raise ValueError("--private needs --push OWNER/NAME")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        repo = export_run(a.source, a.out, method=a.method, mode=a.mode, seed=a.seed, checkpoints=a.checkpoints,
                          benchmark=a.benchmark, repo_id=a.repo_id or a.push, overwrite=a.overwrite)
    for w in caught:
        print(f"cemnist-baselines export: warning: {w.message}", file=sys.stderr)
    r = repo.run
    print(f"wrote {repo.folder}: {r['method']} {r['setting']} {r['mode']} seed {r['seed']} "
          f"(row of {len(repo.group)} seed(s)); files: {', '.join(repo.files)}")
    if repo.eval_results:
        e = repo.eval_results[0]
        print(f"eval result: {e['dataset']['id']} task {e['dataset']['task_id']} = {e['value']}")
    if a.push:
        from cemnist_data.publish import HubError
        try:
            oid = push_model_repo(repo.folder, a.push, private=True if a.private else None,
                                  commit_message=f"CEMNIST baseline {r['method']} {r['mode']} seed {r['seed']}")
        except HubError as e:
            print(f"cemnist-baselines export: error: {e}", file=sys.stderr)
            return 1
        print(f"pushed to https://huggingface.co/{a.push}" + (f" (commit {oid})" if oid else ""))
    return 0


def cmd_report(a: argparse.Namespace, command: str) -> int:
    """``cemnist-baselines report``; returns the exit status."""
    from .report import render_report
    out = Path(a.out) if a.out else Path(a.results) / "report"
    page = render_report(a.results, out, title=a.title, preview_png=a.preview, all_seeds=a.all_seeds,
                         confusion_every=a.every, max_frames=a.max_frames,
                         max_bytes=int(a.max_gif_mb * 1_000_000))
    print(f"wrote {page}")
    return 0


COMMANDS = {"run": cmd_run, "leaderboard": cmd_leaderboard, "validate": cmd_validate, "progress": cmd_progress,
            "targets": cmd_targets, "compare": cmd_compare, "export": cmd_export, "report": cmd_report}
"""One function per command (as ``cemnist``'s CLI)."""


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad arguments, 1 for unmet targets)."""
    argv = sys.argv[1:] if argv is None else argv
    p = _parser()
    a = p.parse_args(argv)
    setup_logging(getattr(a, "verbose", 0))
    command = "cemnist-baselines " + shlex.join(argv)
    try:
        return int(COMMANDS[a.cmd](a, command) or 0)
    except WriteError as e:  # disk full / file-size limit while writing: the path and the fix
        print(f"cemnist-baselines: error: {e}", file=sys.stderr)
        return 1
    except (ValueError, RuntimeError, FileNotFoundError, FileExistsError, NotADirectoryError, PermissionError) as e:
        print(f"cemnist-baselines: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cemnist-baselines: interrupted; finished tasks are checkpointed (continue with --resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

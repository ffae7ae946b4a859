"""Aggregate result JSONs into ``LEADERBOARD.md`` and ``leaderboard.csv`` (mean ± std over seeds).

A row is one method under one protocol (setting, mode, protocol fields, method-specific values, dataset
hashes) on one device type: options that cannot change numbers (compile, channels_last, ...) never split rows.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from .artifacts import atomic_write_text, machine_label
from .metrics import HEADLINE_VIEW, VIEWS
from .results import (ResultError, final_value, group_runs, load_results, mean_std, method_sort_key, mode_sort_key,
                      protocol_id, read_regular_file)

# keys of a result's final block (per view), in column order
FINAL_KEYS = ("miou_bg", "miou", "first", "first_bg", "later", "later_bg", "old", "new", "old_bg", "new_bg",
              "avg_inc_miou_bg", "avg_inc_miou", "forgetting_task", "forgetting_class", "task0_miou_bg")
# The seed tutorial (the notebook this benchmark grew from: SimpleSegNet on multi-digit MNIST, 2-2 overlap, one
# run per method) published single-run final mIoU with background; a reference column (2-2 overlap rows only),
# not comparable protocol.
SEED_REFERENCE: dict[str, str] = {
    "naive": "0.20–0.23 (old classes at 0)",
    "kd": "0.672 (λ=10)",
    "mib": "0.856 (λ=10; 5,000-image pool ≈ 2,500/task, 200 epochs)",
}


def column_labels(tasks: Sequence[Sequence[int]]) -> dict[str, str]:
    """Human labels of the final-block keys for this class order (e.g. ``first`` -> ``0-1``)."""
    def span(ds: Sequence[int]) -> str:
        ds = list(ds)
        return f"{ds[0]}-{ds[-1]}" if ds == list(range(ds[0], ds[-1] + 1)) and len(ds) > 1 else ",".join(map(str, ds))
    first = span(tasks[0])
    later = span([d for t in tasks[1:] for d in t])
    old = span([d for t in tasks[:-1] for d in t])
    new = span(tasks[-1])
    return {
        "miou_bg": "mIoU (bg)", "miou": "mIoU (digits)",
        "first": f"{first} first task", "first_bg": f"{first}+bg", "later": f"{later} later tasks",
        "later_bg": f"{later}+bg", "old": f"{old} earlier tasks", "new": f"{new} last task",
        "old_bg": f"{old}+bg", "new_bg": f"{new}+bg",
        "avg_inc_miou_bg": "avg. incr. mIoU (bg)", "avg_inc_miou": "avg. incr. mIoU (digits)",
        "forgetting_task": "forgetting per task (Chaudhry)", "forgetting_class": "forgetting per class",
        "task0_miou_bg": "task-0 mIoU (bg)",
    }


def aggregate(results: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, protocol, device type): seeds and ``{view}.{key}`` mean / ``_std`` per metric."""
    rows = []
    for runs in group_runs(results):
        r0 = runs[0]
        cfg = r0["config"]
        row: dict[str, Any] = {
            "method": r0["method"], "setting": r0["setting"], "mode": r0["mode"],
            "device": r0["env"].get("device"), "precision": r0.get("precision"), "protocol_id": protocol_id(r0),
            "presets": " ".join(sorted({str(r.get("preset")) for r in runs})),
            "n_seeds": len(runs), "seeds": " ".join(str(r["seed"]) for r in runs),
            "tasks": r0["tasks"], "protocol": r0["protocol"],
        }
        for view in VIEWS:
            for key in FINAL_KEYS:
                row[f"{view}.{key}"], row[f"{view}.{key}_std"] = mean_std([final_value(r, view, key) for r in runs])
        for k in ("epochs", "batch_size", "lr", "schedule", "warmup", "kd_lambda", "eval_split", "max_train", "max_test"):
            row[k] = cfg.get(k)
        row.update({f"method.{k}": v for k, v in sorted(r0.get("method_protocol", {}).items())})
        row["wall_time_s"] = mean_std([sum(r["wall_time_per_task_s"]) for r in runs])[0]
        row["threads"] = r0["env"].get("num_threads")
        row["machines"] = "; ".join(sorted({machine_label(r["env"]) for r in runs}))
        row["package_version"] = " ".join(sorted({str(r.get("package_version")) for r in runs}))
        row["git_commit"] = " ".join(sorted({str(r.get("git_commit")) for r in runs}))
        seed_protocol = (r0["setting"], r0["mode"]) == ("2-2", "overlap")  # the tutorial's setting and mode
        row["seed_reference_final_miou_bg"] = SEED_REFERENCE.get(r0["method"], "") if seed_protocol else ""
        rows.append(row)
    return rows


BASE_COLUMNS = ["method", "setting", "mode", "device", "precision", "protocol_id", "presets", "n_seeds", "seeds"]
TAIL_COLUMNS = ["epochs", "batch_size", "lr", "schedule", "warmup", "kd_lambda", "eval_split", "max_train", "max_test",
                "wall_time_s", "threads", "machines", "package_version", "git_commit", "seed_reference_final_miou_bg"]


def csv_columns(rows: list[dict[str, Any]]) -> list[str]:
    metric_cols = [c for v in VIEWS for k in FINAL_KEYS for c in (f"{v}.{k}", f"{v}.{k}_std")]
    extra = sorted({k for r in rows for k in r if k.startswith("method.")})
    return BASE_COLUMNS + metric_cols + TAIL_COLUMNS + extra


def to_csv(rows: list[dict[str, Any]]) -> str:
    cols = csv_columns(rows)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k])) for k in cols})
    return buf.getvalue()


def _pm(m: float | None, s: float | None) -> str:
    """``mean ± std`` at 3 decimals; a mean that rounds to zero prints as 0.000, never -0.000."""
    if m is None:
        return "—"
    m = m if round(m, 3) != 0 else 0.0
    return f"{m:.3f}" if s is None else f"{m:.3f} ± {s:.3f}"


HEADLINE_KEYS = ("miou_bg", "miou", "first", "first_bg", "later", "old", "new", "avg_inc_miou_bg",
                 "forgetting_task", "forgetting_class", "task0_miou_bg")
IGNORE_KEYS = ("miou_bg", "miou", "first", "first_bg", "later", "avg_inc_miou_bg", "forgetting_task")

EXPLAIN = """\
Mean ± sample std over seeds. Every step of a run is scored on the same fixed evaluation pool (the
whole test pool of 5,000 images unless the protocol draws a fixed subset); each number is a fold of the
stored 11x11 confusion (true label from `full_mask` × predicted label).

- **View "future → background"** (the headline; the released test `mask` convention and PLOP's): pixels
  of classes not seen yet count as background. **View "future → ignored"** (MiB's `255` convention): they
  are left out.
- *(bg)* = background included (the seed tutorial's headline); *(digits)* = digit classes only (MiB's).
- **first task / later tasks** (MiB's and PLOP's "0-1 / 2-9" columns): digits of the first task / of every
  task added afterwards; "+bg" adds background (PLOP counts background as old).
- **earlier tasks / last task**: digits of tasks 0..T-2 / of task T-1.
- **forgetting per task** (Chaudhry et al. 2018): for each task k < T-1, the best mIoU of its digits at any
  step l in [k, T-2] minus its final mIoU, averaged over k. **forgetting per class**: the same per digit.
- A class absent from both the ground truth and the predictions has no IoU and is skipped by every mean
  (with the fixed pool every digit is present, so this only matters for subsets).
- Rows are keyed by method, protocol (setting, mode, class order, epochs, batch, lr, schedule, warm-up, λ,
  width, precision, evaluation split, subsets), dataset content hashes and device type; `protocol` is a
  short hash of the protocol and data.
"""


def _sections(rows: list[dict[str, Any]], *, level: int = 2) -> list[str]:
    """Markdown lines of every (setting, mode, protocol) group: a heading, then a table per view."""
    h = "#" * level
    lines: list[str] = []
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["setting"], r["mode"], r["protocol_id"]), []).append(r)
    for (setting, mode, pid), rs in groups.items():
        r0 = rs[0]
        lab = column_labels(r0["tasks"])
        warm = f" (warm-up {r0['warmup']:g})" if r0["warmup"] else ""
        desc = (f"{r0['epochs']} epochs/task, batch {r0['batch_size']}, lr {r0['lr']:g} {r0['schedule']}"
                f"{warm}, λ {r0['kd_lambda']:g}, "
                f"{r0['precision']}, evaluated on {r0['eval_split']}"
                + (f", max_train {r0['max_train']}" if r0["max_train"] else "")
                + (f", max_test {r0['max_test']}" if r0["max_test"] else ""))
        lines += [f"{h} {setting} {mode} — protocol `{pid}` ({desc})", ""]
        for view, keys, title in ((HEADLINE_VIEW, HEADLINE_KEYS, "future → background (headline)"),
                                  ("future_ignore", IGNORE_KEYS, "future → ignored (MiB convention)")):
            lines += [f"{h}# View: {title}", ""]
            head = ["method", "device", "presets", "seeds"] + [lab[k] for k in keys]
            if view == HEADLINE_VIEW:
                head.append("seed tutorial (final mIoU bg, single run)")
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "|".join(["---"] * len(head)) + "|")
            for r in rs:
                cells = [r["method"], str(r["device"]), r["presets"], str(r["n_seeds"])]
                cells += [_pm(r[f"{view}.{k}"], r[f"{view}.{k}_std"]) for k in keys]
                if view == HEADLINE_VIEW:
                    cells.append(r["seed_reference_final_miou_bg"] or "—")
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        by_machine: dict[str, list[str]] = {}
        for r in rs:
            by_machine.setdefault(r["machines"], []).append(r["method"])
        lines += ["Machines (from each run's `env`; the same seed is bit-identical only on the same machine kind): "
                  + "; ".join(f"{', '.join(ms)}: {m}" for m, ms in by_machine.items()) + ".", ""]
    return lines


def to_markdown(rows: list[dict[str, Any]], *, command: str | None = None) -> str:
    """The whole ``LEADERBOARD.md``: title, the command that made it, the column definitions, every group."""
    lines = ["# CEMNIST baselines leaderboard", ""]
    if command:
        lines += [f"Produced by `{command}`.", ""]
    lines += [EXPLAIN, ""]
    return "\n".join(lines + _sections(rows))


README_BEGIN = "<!-- leaderboard:begin (generated by `cemnist-baselines leaderboard --readme`; do not edit) -->"
README_END = "<!-- leaderboard:end -->"


def splice_readme(text: str, rows: list[dict[str, Any]], *, level: int = 3) -> str:
    """``text`` with the tables of ``rows`` between :data:`README_BEGIN` and :data:`README_END` (each exactly
    once, in that order); everything outside the markers is kept byte for byte."""
    nb, ne = text.count(README_BEGIN), text.count(README_END)
    if nb != 1 or ne != 1 or text.index(README_BEGIN) > text.index(README_END):
        raise ValueError(f"the README must hold the line {README_BEGIN!r} once, followed by {README_END!r} once "
                         f"(found {nb} and {ne})")
    head, rest = text.split(README_BEGIN)
    _, tail = rest.split(README_END)
    body = "\n".join(_sections(rows, level=level)).rstrip("\n")
    return f"{head}{README_BEGIN}\n\n{body}\n\n{README_END}{tail}"


def write_leaderboard(results_dir: str | Path, *, out_dir: str | Path | None = None,
                      command: str | None = None) -> tuple[Path, Path]:
    """Write ``LEADERBOARD.md``, ``leaderboard.csv`` and the Hub-loadable run table (``results.parquet`` +
    ``README.md`` YAML) into ``out_dir`` (default ``results_dir``) from results with structural checks only
    (:func:`~cemnist_baselines.results.load_results`, for results you built yourself); the ``leaderboard`` and
    ``run`` commands write the board of validated results (:func:`load_validated`, :func:`write_board`)."""
    results = load_results(results_dir)
    if not results:
        raise ValueError(f"no result JSON found in {results_dir}")
    return write_board(results, Path(out_dir) if out_dir is not None else Path(results_dir), command=command)


def write_board(results: Sequence[Mapping[str, Any]], out: Path, *, command: str | None = None,
                readme: Path | None = None) -> tuple[Path, Path]:
    """Write the board files of ``results`` into ``out`` (and the same tables into ``readme``'s leaderboard
    markers, :func:`splice_readme`); returns (LEADERBOARD.md, leaderboard.csv). A ``README.md`` in ``out`` that
    the run table cannot share (:func:`table_readme`) is refused before anything is written."""
    check_table_readme(out)
    rows = aggregate(list(results))
    md, cs = out / "LEADERBOARD.md", out / "leaderboard.csv"
    atomic_write_text(md, to_markdown(rows, command=command))
    atomic_write_text(cs, to_csv(rows))
    if readme is not None:
        atomic_write_text(readme, splice_readme(readme.read_text(encoding="utf-8"), rows))
    write_results_table(results, out)
    return md, cs


def load_validated(folders: Sequence[str | Path]) -> tuple[list[dict[str, Any]], list[Any]]:
    """Results of several folders that pass ``validate`` (each loaded with its ``_path``), and the
    :class:`~cemnist_baselines.validate.Validation` of every refused file (with the reasons):
    :func:`cemnist_baselines.validate.load_validated` for folders only."""
    from .validate import load_validated as load

    for f in folders:
        if not Path(f).is_dir():
            raise FileNotFoundError(f"results folder {f} does not exist (or is not a folder)")
    return load(list(folders))


# ----------------------------------------------------------------------------- the run table (parquet)
TABLE_FILE = "results.parquet"
TABLE_YAML = {"configs": [{"config_name": "default", "data_files": [{"split": "train", "path": TABLE_FILE}]}]}
TABLE_CARD = {"pretty_name": "CEMNIST baselines: one row per run", "license": "mit",
              "tags": ["cemnist", "continual-learning", "class-incremental", "semantic-segmentation", "leaderboard",
                       "benchmark-results"]}
"""Card metadata of the run table as a Hub dataset folder (an existing README's own values are kept)."""


def table_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per run: identity (method, source, seed, protocol id, device, package version, commit, run id),
    the protocol (a dict: a struct column), method protocol values (JSON: their keys differ per method), the
    tasks (lists of digits), the mIoU (bg) after each task (column ``steps_miou_bg``, named after the result
    key ``steps``) and every final metric."""
    rows = []
    for r in sorted(results, key=lambda r: (r["setting"], mode_sort_key(r["mode"]), protocol_id(r),
                                            method_sort_key(r["method"]), int(r["seed"]))):
        row: dict[str, Any] = {
            "method": r["method"], "method_source": r.get("method_source"), "seed": int(r["seed"]),
            "setting": r["setting"], "mode": r["mode"], "preset": r.get("preset"), "protocol_id": protocol_id(r),
            "device": r["env"].get("device"), "precision": r.get("precision"),
            "package_version": r.get("package_version"), "git_commit": r.get("git_commit"),
            "run_id": r.get("run_id"), "dataset_version": r["dataset"].get("version"),
            "protocol": dict(sorted(r["protocol"].items())),  # a struct column, not a JSON string
            "method_protocol": json.dumps(r.get("method_protocol", {}), sort_keys=True),  # keys differ per method
            "tasks": [list(map(int, t)) for t in r["tasks"]],
            "steps_miou_bg": [s.get("miou_bg") for s in r["steps"]],
            "wall_time_s": float(sum(r["wall_time_per_task_s"])),
        }
        for view in VIEWS:
            for key in FINAL_KEYS:
                v = final_value(r, view, key)
                row[f"{view}.{key}"] = None if v is None else float(v)
        rows.append(row)
    return rows


def write_results_table(results: Sequence[Mapping[str, Any]], out: Path) -> Path:
    """``results.parquet`` (one row per run) and a ``README.md`` whose YAML header makes
    ``datasets.load_dataset(out)`` read it (an existing README keeps its text and front matter; the keys it
    lacks are added: :func:`table_readme`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .artifacts import atomic_path

    readme = out / "README.md"
    card = table_readme(_read_readme(readme), path=readme)  # refused before anything is written
    rows = table_rows(results)
    cols = list(rows[0]) if rows else []
    protocol = pa.array([r["protocol"] for r in rows]).type if rows else pa.struct([])  # union of the fields

    def col_type(c: str) -> pa.DataType:
        return {"steps_miou_bg": pa.list_(pa.float64()), "seed": pa.int64(), "protocol": protocol,
                "tasks": pa.list_(pa.list_(pa.int64()))}.get(
            c, pa.float64() if (c == "wall_time_s" or c.startswith(VIEWS)) else pa.string())

    table = pa.Table.from_pylist(rows, schema=pa.schema([(c, col_type(c)) for c in cols]))
    out.mkdir(parents=True, exist_ok=True)
    path = out / TABLE_FILE
    with atomic_path(path) as tmp:
        pq.write_table(table, str(tmp))
    if card != _read_readme(readme):
        atomic_write_text(readme, card)
    return path


TABLE_BODY = ("# CEMNIST baselines: one row per run\n\n`datasets.load_dataset(\"<this folder>\")[\"train\"]` reads "
              f"`{TABLE_FILE}`; the board is in `LEADERBOARD.md`, each run's full record in its JSON.\n")


def _read_readme(path: Path) -> str | None:
    """The text of ``path`` (None when there is none); a FIFO, device or huge file is refused."""
    if not os.path.lexists(path):
        return None
    try:
        return read_regular_file(path, what="README").decode("utf-8")
    except UnicodeDecodeError as e:
        raise ResultError(f"{path}: not UTF-8 text ({e}); the run table's card must be readable: fix the README "
                          f"or move it away") from e


def table_readme(text: str | None, *, path: Path) -> str:
    """The ``README.md`` of a results folder with the run table's YAML front matter (``configs`` pointing at
    ``results.parquet``, and a title, licence and tags unless the README has its own).

    No README: the card the tool writes. A README without front matter: the tool's front matter is put before
    its text. A README with front matter: the keys it lacks are appended to it as text, so its other keys,
    comments and body are kept byte for byte (a card the tool wrote is returned unchanged). Refused with a
    :class:`ValueError` naming ``path`` and the fix: a first line ``---`` that opens no YAML mapping (e.g. a
    markdown rule), or front matter whose own ``configs`` leaves out the run table."""
    import yaml

    def dump(d: dict[str, Any]) -> str:
        return yaml.safe_dump(d, sort_keys=False)

    full = {**TABLE_YAML, **TABLE_CARD}
    if not text:
        return "---\n" + dump(full) + "---\n\n" + TABLE_BODY
    lines = text.splitlines(keepends=True)
    if lines[0].rstrip("\r\n") != "---":
        return "---\n" + dump(full) + "---\n\n" + text
    fix = (f"the run table needs YAML front matter in {path} (datasets.load_dataset reads it): start the README "
           f"with a title instead of a '---' rule, or with a YAML header ('---', key: value lines, '---'), or "
           f"write the board into another folder (leaderboard --out DIR; run --out DIR)")
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip("\r\n") == "---"), None)
    if end is None:
        raise ValueError(f"{path}: starts with a '---' line that no '---' line closes, so it is not YAML front "
                         f"matter; {fix}")
    head = "".join(lines[1:end])
    try:
        header = yaml.safe_load(head)
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: the '---' block at its top is not valid YAML ({str(e).splitlines()[0]}); "
                         f"{fix}") from None
    if header is None:
        header = {}
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the '---' block at its top is not a YAML mapping (it reads as "
                         f"{type(header).__name__}); {fix}")
    own = header.get("configs")
    if own is not None and not (isinstance(own, list) and TABLE_YAML["configs"][0] in own
                                and [c.get("config_name") for c in own if isinstance(c, dict)].count("default") == 1):
        raise ValueError(f"{path}: its front matter declares its own configs ({own!r}) without the run table's "
                         f"config {TABLE_YAML['configs'][0]!r}; add that entry to its configs list, remove the "
                         f"configs key, or write the board into another folder (leaderboard --out DIR; run --out DIR)")
    missing = {k: v for k, v in full.items() if k not in header}
    if not missing:
        return text
    if head and not head.endswith("\n"):
        head += "\n"
    merged = head + dump(missing)
    try:
        ok = yaml.safe_load(merged) == {**header, **missing}
    except yaml.YAMLError:
        ok = False
    if not ok:
        raise ValueError(f"{path}: cannot add the keys {sorted(missing)} to its front matter without rewriting it "
                         f"(flow style?); add them yourself:\n{dump(missing)}or write the board into another folder "
                         f"(leaderboard --out DIR; run --out DIR)")
    return lines[0] + merged + "".join(lines[end:])


def check_table_readme(folder: str | Path) -> None:
    """Refuse at once (ValueError naming the file and the fix) a ``README.md`` in ``folder`` that the run
    table cannot share (:func:`table_readme`): ``run`` calls this before training."""
    readme = Path(folder) / "README.md"
    table_readme(_read_readme(readme), path=readme)

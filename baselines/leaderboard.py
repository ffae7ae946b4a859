"""Aggregate result JSONs into ``LEADERBOARD.md`` and ``leaderboard.csv`` (mean ± std over seeds)."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

from .artifacts import RESULT_SCHEMA, atomic_write_text

# column -> path in the result JSON's "final" block
METRICS: dict[str, str] = {
    "final_miou_bg": "miou_bg",
    "final_miou": "miou",
    "final_old": "old",
    "final_new": "new",
    "final_old_bg": "old_bg",
    "final_new_bg": "new_bg",
    "avg_inc_miou_bg": "avg_inc_miou_bg",
    "avg_inc_miou": "avg_inc_miou",
    "forgetting": "forgetting",
    "task0_miou_bg": "task0_miou_bg",
}
# The seed tutorial's published single-run numbers (final mIoU with background; issue 3 §5).
SEED_REFERENCE: dict[str, str] = {
    "naive": "0.20–0.23 (old classes at 0)",
    "kd": "0.672 (λ=10)",
    "mib": "0.856 (λ=10; 5,000-image pool ≈ 2,500/task, 200 epochs)",
    "joint": "",
}
SEED_REFERENCE_TASK0 = "0.78–0.92"
METHOD_ORDER = ("naive", "kd", "mib", "joint")
MD_COLUMNS = [("final_miou_bg", "final mIoU (bg)"), ("final_miou", "final mIoU"), ("final_old", "old"),
              ("final_new", "new"), ("avg_inc_miou_bg", "avg inc. mIoU (bg)"), ("forgetting", "forgetting"),
              ("task0_miou_bg", "task-0 mIoU (bg)")]


def load_results(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every ``*.json`` in ``results_dir`` with the result schema (other JSON files are skipped)."""
    out = []
    for p in sorted(Path(results_dir).glob("*.json")):
        d = json.loads(p.read_text())
        if isinstance(d, dict) and d.get("schema") == RESULT_SCHEMA:
            out.append(d)
    return out


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n-1) of the non-None values; std is None for n < 2."""
    v = [float(x) for x in values if x is not None]
    if not v:
        return None, None
    m = sum(v) / len(v)
    if len(v) < 2:
        return m, None
    return m, math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))


def _config_id(cfg: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:8]


def aggregate(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, setting, mode, preset, config): n_seeds, seeds, ``m`` and ``m_std`` per metric."""
    groups: dict[tuple[str, str, str, str, str], list[dict[str, Any]]] = {}
    for r in results:
        key = (r["method"], r["setting"], r["mode"], r.get("preset", ""), _config_id(r["config"]))
        groups.setdefault(key, []).append(r)

    def order(k: tuple[str, ...]) -> tuple[Any, ...]:
        m = k[0]
        return (k[1], k[2], k[3], METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m, k[4])

    rows = []
    for key in sorted(groups, key=order):
        runs = sorted(groups[key], key=lambda r: r["seed"])
        seeds = [r["seed"] for r in runs]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"duplicate seeds {seeds} for {key[:4]}")
        row: dict[str, Any] = {"method": key[0], "setting": key[1], "mode": key[2], "preset": key[3],
                               "config_id": key[4], "n_seeds": len(runs), "seeds": " ".join(map(str, seeds))}
        for col, field in METRICS.items():
            row[col], row[f"{col}_std"] = mean_std([r["final"].get(field) for r in runs])
        row["epochs"] = runs[0]["config"].get("epochs")
        row["wall_time_s"] = mean_std([sum(r["wall_time_per_task_s"]) for r in runs])[0]
        row["seed_reference_final_miou_bg"] = SEED_REFERENCE.get(key[0], "")
        row["seed_reference_task0_miou_bg"] = "" if key[0] == "joint" else SEED_REFERENCE_TASK0
        rows.append(row)
    return rows


CSV_COLUMNS = (["method", "setting", "mode", "preset", "config_id", "n_seeds", "seeds"]
               + [c for m in METRICS for c in (m, f"{m}_std")]
               + ["epochs", "wall_time_s", "seed_reference_final_miou_bg", "seed_reference_task0_miou_bg"])


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k]))
                    for k in CSV_COLUMNS})
    return buf.getvalue()


def _pm(m: float | None, s: float | None) -> str:
    """``mean ± std`` at 3 decimals; a mean that rounds to zero prints as 0.000, never -0.000."""
    if m is None:
        return "—"
    m = m if round(m, 3) != 0 else 0.0
    return f"{m:.3f}" if s is None else f"{m:.3f} ± {s:.3f}"


def to_markdown(rows: list[dict[str, Any]], *, command: str | None = None) -> str:
    lines = ["# CEMNIST baselines leaderboard", ""]
    if command:
        lines += [f"Produced by `{command}`.", ""]
    lines += ["Mean ± sample std over seeds; IoU on the last task's test split. *(bg)* = background included "
              "(the seed tutorial's headline); otherwise digit classes only (MiB's convention). old / new = digit "
              "classes of earlier tasks / of the last task. Forgetting = mean over old digits of max earlier IoU "
              "− final IoU. Last column: the seed tutorial's published single-run final mIoU (bg), for reference.",
              ""]
    head = ["method", "setting", "mode", "preset", "seeds"] + [h for _, h in MD_COLUMNS] + ["seed tutorial (final mIoU bg)"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * len(head)) + "|")
    for r in rows:
        cells = [r["method"], r["setting"], r["mode"], r["preset"], str(r["n_seeds"])]
        cells += [_pm(r[c], r[f"{c}_std"]) for c, _ in MD_COLUMNS]
        cells.append(r["seed_reference_final_miou_bg"] or "—")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def write_leaderboard(results_dir: str | Path, *, out_dir: str | Path | None = None,
                      command: str | None = None) -> tuple[Path, Path]:
    """Write ``LEADERBOARD.md`` and ``leaderboard.csv`` (into ``out_dir``, default ``results_dir``)."""
    results = load_results(results_dir)
    if not results:
        raise ValueError(f"no result JSON (schema {RESULT_SCHEMA}) found in {results_dir}")
    rows = aggregate(results)
    out = Path(out_dir) if out_dir is not None else Path(results_dir)
    md, cs = out / "LEADERBOARD.md", out / "leaderboard.csv"
    atomic_write_text(md, to_markdown(rows, command=command))
    atomic_write_text(cs, to_csv(rows))
    return md, cs

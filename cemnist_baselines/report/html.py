"""The report page: everything for a results folder rendered into one directory plus one self-contained
``index.html`` (:func:`render_report`, one function per section of the page)."""
from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from cemnist_data.fileio import atomic_write_bytes, atomic_write_text
from cemnist_data.viz.gif import DEFAULT_MAX_BYTES, DEFAULT_MAX_FRAMES
from ..leaderboard import aggregate, column_labels
from ..metrics import HEADLINE_VIEW
from ..results import format_pm, method_sort_key, plot_groups
from ..validate import load_valid_results
from .animations import (CONFUSION_GIF, PREDICTION_GIF, TRACE_SUFFIX, confusion_gif, find_traces, load_trace,
                         prediction_gif)
from .plots import plot_class_iou_heatmaps, plot_miou_curves

REPORT_KEYS = ("miou_bg", "miou", "first", "later", "old", "new", "avg_inc_miou_bg", "forgetting_task")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;font-size:.9rem;margin:.6rem 0}th,td{border:1px solid #ccc;padding:.25rem .55rem;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.85rem;color:#555}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.8rem;max-height:28rem}
.note{color:#666;font-size:.85rem}#img-status{font-size:.8rem;color:#888}
"""

# Runs after load: records in the DOM whether every image decoded (used by the headless-browser test).
_JS = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (im) { return !(im.complete && im.naturalWidth > 0); });
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-images-ok', bad.length === 0 ? 'yes' : 'no');
  var s = document.getElementById('img-status');
  if (s) { s.textContent = bad.length === 0 ? ('all ' + imgs.length + ' images loaded')
                                              : (bad.length + ' of ' + imgs.length + ' images failed to load'); }
});
"""

_MIME = {".png": "image/png", ".gif": "image/gif"}


def _data_uri(path: Path) -> str:
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"cannot inline {path}: only .png and .gif are supported")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _figure(path: Path, caption: str) -> str:
    return (f'<figure><img src="{_data_uri(path)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)} <code>{html.escape(path.name)}</code></figcaption></figure>")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(str(h))}</th>' for i, h in enumerate(header))
    trs = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{html.escape(str(c))}</td>' for i, c in enumerate(r))
        + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def computed_leaderboard(runs: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Leaderboard (header, rows) from the JSONs: headline-view final metrics in %, mean ± sample std over seeds."""
    rows = aggregate(list(runs))
    lab = column_labels(rows[0]["tasks"]) if rows else {}
    header = ["setting", "mode", "protocol", "device", "method", "seeds"] + [lab.get(k, k) for k in REPORT_KEYS]
    out = []
    for r in rows:
        out.append([r["setting"], r["mode"], r["protocol_id"], str(r["device"]), r["method"], str(r["n_seeds"])]
                   + [format_pm(r[f"{HEADLINE_VIEW}.{k}"], r[f"{HEADLINE_VIEW}.{k}_std"]) for k in REPORT_KEYS])
    return header, out


def _slug(*parts: Any) -> str:
    s = "_".join(str(p) for p in parts if str(p) != "default")
    return "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in s)


def render_report(
    results_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    title: str = "CEMNIST results",
    preview_png: str | os.PathLike[str] | None = None,
    all_seeds: bool = False,
    confusion_every: int = 1,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Path:
    """Render plots, animations, leaderboard, dataset preview and run configs for ``results_dir``.

    Pictures go to ``out_dir`` (PNG/GIF, reusable in READMEs); ``out_dir/index.html`` inlines all of
    them as base64 data URIs, so the single HTML file opens anywhere without network access.
    Animations are drawn for the lowest seed of each method unless ``all_seeds``. Returns the HTML path.
    One function per section of the page: :func:`_leaderboard_section`, :func:`_plots_section`,
    :func:`_animations_section`, :func:`_preview_section`, :func:`_runs_section`.
    """
    results_dir = Path(results_dir)
    out_dir = Path(out_dir)
    runs = load_valid_results(results_dir)  # what `validate` refuses is never drawn
    traces = find_traces(results_dir)
    if not runs and not traces:
        raise ValueError(f"{results_dir} holds no result JSON and no {TRACE_SUFFIX} file")
    out_dir.mkdir(parents=True, exist_ok=True)
    body: list[str] = [f"<h1>{html.escape(title)}</h1>",
                       f'<p class="note">Rendered from <code>{html.escape(str(results_dir))}</code> '
                       f"({len(runs)} runs, {len(traces)} traces). <span id=\"img-status\"></span></p>"]
    body += _leaderboard_section(runs)
    body += _plots_section(runs, out_dir)
    body += _animations_section(traces, out_dir, all_seeds=all_seeds, confusion_every=confusion_every,
                                max_frames=max_frames, max_bytes=max_bytes)
    body += _preview_section(preview_png, out_dir)
    body += _runs_section(runs)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + f"\n<script>{_JS}</script>\n</body></html>\n")
    return atomic_write_text(out_dir / "index.html", page)


def _leaderboard_section(runs: list[dict[str, Any]]) -> list[str]:
    body = ["<h2>Leaderboard</h2>"]
    if runs:
        header, rows = computed_leaderboard(runs)
        body.append('<p class="note">Computed from the run JSONs (view: future classes → background): final metrics '
                    "in %, mean ± sample std (ddof=1) over seeds; every step scored on one fixed evaluation pool.</p>"
                    + _table(header, rows, left=6))
    else:
        body.append('<p class="note">No result JSONs.</p>')
    return body


def _plots_section(runs: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """mIoU curves and per-class IoU heatmaps per (setting, mode, preset, device)."""
    body: list[str] = []
    groups = plot_groups(runs)
    if groups:
        body.append("<h2>Plots</h2>")
    for (setting, mode, pid, device), methods in groups.items():
        group = [r for rs in methods.values() for r in rs]
        presets = sorted({str(r.get("preset", "")) for r in group})
        preset = presets[0] if len(presets) == 1 else pid   # file names: the preset when the group has one
        name = f"{setting} {mode} [{preset}, {device}]"
        p1 = out_dir / f"miou_{_slug(setting, mode, preset)}.png"
        plot_miou_curves(group, out=p1)
        body.append(_figure(p1, f"{name}: mIoU (incl. background) after each task on the fixed pool, mean ± std over seeds."))
        p2 = out_dir / f"class_iou_{_slug(setting, mode, preset)}.png"
        plot_class_iou_heatmaps(group, out=p2)
        body.append(_figure(p2, f"{name}: per-class IoU after each task, mean over seeds."))
    return body


def _animations_section(traces: list[Path], out_dir: Path, *, all_seeds: bool, confusion_every: int,
                        max_frames: int, max_bytes: int) -> list[str]:
    """Per (setting, mode, preset) and seed: the prediction panel GIF of the incremental methods and one
    confusion GIF per run."""
    body: list[str] = []
    if not traces:
        return body
    body.append("<h2>Animations</h2>")
    by_group: dict[tuple[str, str, str], list[Any]] = {}
    for path in traces:
        try:
            trace = load_trace(path)
        except (ValueError, OSError) as exc:
            body.append(f'<p class="note">Skipped trace {html.escape(path.name)}: {html.escape(str(exc))}</p>')
            continue
        r = trace.result or {}
        k = (str(r.get("setting", "?")), str(r.get("mode", "?")), str(r.get("preset", "")))
        by_group.setdefault(k, []).append(trace)
    for (setting, mode, preset), group in sorted(by_group.items()):
        name = f"{setting} {mode}" + (f" [{preset}]" if preset not in ("", "default") else "")
        seeds = sorted({t.seed for t in group}, key=lambda s: (len(s), s))
        for seed in seeds if all_seeds else seeds[:1]:
            sel = sorted([t for t in group if t.seed == seed], key=lambda t: method_sort_key(t.method))
            n_steps = max(t.panel_pred.shape[0] for t in sel)
            # Single-stage runs (joint training) have one prediction step: not part of the per-task panel.
            inc = [t for t in sel if t.panel_pred.shape[0] == n_steps and not (t.result or {}).get("joint")]
            if inc and len({t.method for t in inc}) == len(inc):
                p = out_dir / f"predictions_{_slug(setting, mode, preset, 'seed' + seed)}.gif"
                try:
                    prediction_gif({t.method: t for t in inc}, p, title=f"{name}, seed {seed}",
                                   options=replace(PREDICTION_GIF, max_frames=max_frames, max_bytes=max_bytes))
                    body.append(_figure(p, f"{name}, seed {seed}: predictions on a fixed test panel after each "
                                           "task; ground truth restricted to the digits seen so far."))
                except ValueError as exc:
                    body.append(f'<p class="note">No prediction panel for seed {html.escape(seed)}: '
                                f"{html.escape(str(exc))}</p>")
            for t in sel:
                p = out_dir / f"confusion_{_slug(t.path.name[: -len(TRACE_SUFFIX)])}.gif"
                confusion_gif(t, p, every=confusion_every, title=f"{t.method} · {name} · seed {seed}",
                              options=replace(CONFUSION_GIF, max_frames=max_frames, max_bytes=max_bytes))
                body.append(_figure(p, f"{t.method}, seed {seed}: row-normalised confusion matrix on the "
                                       "evaluation pool (all labels) after each recorded epoch."))
    return body


def _preview_section(preview_png: str | os.PathLike[str] | None, out_dir: Path) -> list[str]:
    body = ["<h2>Dataset preview</h2>"]
    if preview_png is not None:
        dst = out_dir / "preview_strip.png"
        if Path(preview_png).resolve() != dst.resolve():
            atomic_write_bytes(dst, Path(preview_png).read_bytes())
        body.append(_figure(dst, "One row per task: train samples with their (train-view) masks."))
    else:
        body.append('<p class="note">No dataset preview given (render one with <code>cemnist preview</code> and '
                    "pass it with <code>--preview</code>).</p>")
    return body


def _runs_section(runs: list[dict[str, Any]]) -> list[str]:
    """One table row per run (file, method, seed, preset, dataset, commit, device, wall time) and its config."""
    if not runs:
        return []
    body = ["<h2>Runs and configs</h2>"]
    rows = []
    for r in sorted(runs, key=lambda r: (r["setting"], r["mode"], method_sort_key(r["method"]), int(r["seed"]))):
        env = r.get("env") or {}
        rows.append([Path(r["_path"]).name, r["method"], str(r["seed"]), r.get("preset", ""),
                     (r.get("dataset") or {}).get("version", ""), str(r.get("git_commit") or "–")[:12],
                     f"{env.get('device', '')} {env.get('device_name', '') or ''}".strip(),
                     f"{sum(r.get('wall_time_per_task_s') or [0]):.0f}"])
    body.append(_table(["file", "method", "seed", "preset", "dataset", "commit", "device", "wall s"], rows,
                       left=2))
    for r in sorted(runs, key=lambda r: Path(r["_path"]).name):
        cfg = json.dumps(r.get("config", {}), indent=2, sort_keys=True)
        body.append(f"<details><summary>{html.escape(Path(r['_path']).name)}</summary>"
                    f"<pre>{html.escape(cfg)}</pre></details>")
    return body

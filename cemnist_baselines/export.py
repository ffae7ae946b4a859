"""``cemnist-baselines export``: a run as a Hub model repo folder whose score shows on the CEMNIST benchmark.

The folder holds:

* ``model.safetensors`` — the run's final checkpoint (the model after its last task: ``SimpleSegNet``'s
  state dict, no pickle) and ``config.json`` (architecture, width, channel -> label map, run identity);
* ``README.md`` — a model card: method, protocol, seeds, this checkpoint's numbers beside the board's mean ±
  std over the seeds of its leaderboard row, the command that reproduces it, and how to load it;
* ``results/*.json`` — the result files of the row's runs (the confusion matrices every number is folded
  from; ``cemnist-baselines validate results/`` re-checks them);
* ``.eval_results/<benchmark>.yaml`` — the score in the Hub's eval-results format, pointing at the benchmark
  dataset's ``eval.yaml`` task (written only for a benchmark run: release data, whole test pool).

The eval-results file follows the Hub documentation page "Evaluation Results"
(https://huggingface.co/docs/hub/eval-results, section "Adding Evaluation Results") and its specification
(https://github.com/huggingface/hub-docs/blob/main/eval_results.yaml): a YAML list of entries with
``dataset.id`` (the benchmark dataset), ``dataset.task_id`` (a task of that dataset's ``eval.yaml``: here
``final_miou_bg_overlap`` or ``final_miou_bg_disjoint``, see :func:`cemnist_data.card.eval_yaml`),
``value``, and the optional ``source`` (``url`` required, ``name``) and ``notes``. ``dataset.revision`` is
optional and documented as a commit hash, which an offline export cannot know; the release version is in
``notes`` instead. The value is this checkpoint's own score (one model, one number); the card gives the
row's mean ± std.

``--push OWNER/NAME`` uploads the folder through ``huggingface_hub`` (``create_repo`` with the Hub's
default visibility, one ``upload_folder`` commit); a Hub that cannot be reached is a one-line error.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .results import ResultError, group_runs, load_result, mean_std, protocol_id, protocol_key

__all__ = ["EXPORT_FORMAT", "ExportedRepo", "benchmark_problems", "eval_results_entries", "export_run",
           "push_model_repo", "reproduce_command", "select_run"]

EXPORT_FORMAT = "cemnist-baselines-model/1"
MODEL_FILE, CONFIG_FILE, CARD_FILE, RESULTS_DIR, EVAL_DIR = ("model.safetensors", "config.json", "README.md",
                                                             "results", ".eval_results")
UPLOAD_PATTERNS = [MODEL_FILE, CONFIG_FILE, CARD_FILE, f"{RESULTS_DIR}/*.json", f"{EVAL_DIR}/*.yaml"]
DELETE_PATTERNS = [f"{RESULTS_DIR}/*.json", f"{EVAL_DIR}/*.yaml"]
"""Removed from the repo in the same commit unless the folder holds them: no stale score or result survives."""
_CLI_FLAGS = {"epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "lr_next": "--lr-next",
              "schedule": "--schedule", "warmup": "--warmup", "kd_lambda": "--kd-lambda", "eval_split": "--eval-split",
              "max_train": "--max-train", "max_test": "--max-test"}


@dataclass
class ExportedRepo:
    """What :func:`export_run` wrote, and the run it came from."""

    folder: Path
    run: dict[str, Any]
    group: list[dict[str, Any]]
    files: list[str] = field(default_factory=list)
    eval_results: list[dict[str, Any]] | None = None  # None: not a benchmark run (see ``problems``)
    problems: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- choosing the run
def _check_valid(runs: Sequence[dict[str, Any]], *, chosen: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The runs that pass ``cemnist-baselines validate``. The chosen run failing is a ValueError naming the
    checks; another run failing is left out of the row's statistics with a warning naming it."""
    from .data import dataset_info
    from .validate import validate_file

    release = dataset_info(path="cemnist")
    out = []
    for r in runs:
        v = validate_file(r["_path"], release=release)
        if v.ok:
            out.append(r)
        elif r is chosen:
            raise ValueError(f"{r['_path']} does not validate, so it is not exported: {'; '.join(v.failures[:3])} "
                             f"(`cemnist-baselines validate {r['_path']}` lists every check)")
        else:
            warnings.warn(f"{r['_path']} does not validate and is left out of the row's mean ± std: "
                          f"{'; '.join(v.failures[:2])}", UserWarning, stacklevel=3)
    return out


def _load_all(paths: Sequence[Path], *, required: Path | None) -> list[dict[str, Any]]:
    """Load result files; a damaged one is skipped with a warning, unless it is ``required``."""
    out = []
    for p in paths:
        try:
            out.append(load_result(p))
        except ResultError as e:
            if required is not None and p.resolve() == required.resolve():
                raise
            warnings.warn(f"skipped: {e}", UserWarning, stacklevel=3)
    return out


def select_run(source: str | Path, *, method: str | None = None, mode: str | None = None,
               seed: int | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(run, its leaderboard row's runs)`` from a result JSON or a results folder.

    A folder must hold one row after ``method`` / ``mode`` are applied (otherwise a ValueError lists the
    rows); the run is the one of ``seed``, by default the lowest seed. The row's other runs are the result
    files beside the run with the same :func:`~cemnist_baselines.results.protocol_key`.
    """
    from cemnist_data.workdirs import NoSuchFolderError

    from .results import is_result_file

    src = Path(source)
    if not src.exists():
        raise NoSuchFolderError(f"{src} does not exist: pass a result JSON or a folder of them")
    folder = src if src.is_dir() else src.parent
    siblings = [p for p in sorted(folder.glob("*.json")) if is_result_file(p)]
    if src.is_file():
        siblings = [src] + [p for p in siblings if p.resolve() != src.resolve()]
    runs = _load_all(siblings, required=src if src.is_file() else None)
    if src.is_file():
        method, mode, seed = runs[0]["method"], runs[0]["mode"], int(runs[0]["seed"])
        key = json.dumps(protocol_key(runs[0]), sort_keys=True)
        runs = [r for r in runs if json.dumps(protocol_key(r), sort_keys=True) == key]
    pool = [r for r in runs if (method is None or r["method"] == method) and (mode is None or r["mode"] == mode)]
    if not pool:
        raise ValueError(f"no result in {folder} for method {method or 'any'} and mode {mode or 'any'}; it has "
                         f"{sorted({(r['method'], r['mode']) for r in runs})}")
    groups = group_runs(pool)
    if len(groups) > 1:
        rows = [f"{g[0]['method']} {g[0]['mode']} on {g[0]['env'].get('device')} protocol {protocol_id(g[0])} "
                f"(seeds {' '.join(str(r['seed']) for r in g)})" for g in groups]
        raise ValueError(f"{folder} holds {len(groups)} leaderboard rows; choose one with --method / --mode "
                         f"(or pass one result JSON): {'; '.join(rows)}")
    group = [dict(r) for r in groups[0]]
    chosen = group[0] if seed is None else next((r for r in group if int(r["seed"]) == seed), None)
    if chosen is None:
        raise ValueError(f"no run of seed {seed} in that row; its seeds: {[int(r['seed']) for r in group]}")
    return chosen, _check_valid(group, chosen=chosen)


# ----------------------------------------------------------------------------- the final checkpoint
def final_checkpoint(run: Mapping[str, Any], *, checkpoints: str | Path | None = None) -> Path:
    """``checkpoints/{stem}/task{last}.safetensors`` beside the run's JSON (or under ``checkpoints``; an older
    run's ``step{last}.safetensors`` when that is what is there: :func:`.checkpoints.task_checkpoints`)."""
    from .checkpoints import task_checkpoint, task_checkpoints

    json_path = Path(run["_path"])
    root = Path(checkpoints) if checkpoints is not None else json_path.parent / "checkpoints"
    last = len(run["steps"]) - 1  # the result's records, one per task
    return task_checkpoints(root / json_path.stem).get(last, task_checkpoint(root / json_path.stem, last))


def _load_final_state(run: Mapping[str, Any], path: Path) -> tuple[dict[str, Any], int]:
    """The final model's state dict and number of output channels, checked to be this run's last checkpoint."""
    from .checkpoints import load_checkpoint
    from .config import complete_config

    if not path.is_file():
        raise FileNotFoundError(
            f"the final checkpoint {path} of {run['_path']} is not there (checkpoints are not kept in version control). "
            f"Point --checkpoints at the folder `run` wrote them to, or rerun the run: {reproduce_command(run)}")
    state, _, cfg, prog = load_checkpoint(path)
    same_records = (len(prog.get("steps", [])) == len(run["steps"])
                    and all(a["confusion"] == b["confusion"] for a, b in zip(prog["steps"], run["steps"])))
    if (complete_config(cfg) != complete_config(run["config"]) or prog.get("method") != run["method"]
            or int(prog.get("seed", -1)) != int(run["seed"]) or not same_records):
        raise ValueError(f"{path} is not the final checkpoint of {run['_path']} (another config, method, seed, or "
                         f"scores that differ from the result's); rerun the run: {reproduce_command(run)}")
    return state, int(prog["num_classes"])


# ----------------------------------------------------------------------------- benchmark and texts
def benchmark_problems(run: Mapping[str, Any]) -> list[str]:
    """Why a (validated) run is not a result of the CEMNIST benchmark; empty when it is one.

    The benchmark's tasks (``eval.yaml``) score the model after the last task of the release's setting and
    class order, on the whole test pool: a run evaluated on the validation pool or on a subset of the pool,
    or of another setting or class order, measures something else.
    """
    from cemnist_data import release_info

    info = release_info("cemnist", version=str(run["dataset"].get("version")))
    ev, cfg = run["evaluation"], run["config"]
    out = []
    if run["setting"] != info["setting"]:
        out.append(f"setting {run['setting']} (the benchmark's: {info['setting']})")
    if cfg.get("class_order") not in (None, list(info["class_order"]), tuple(info["class_order"])):
        out.append(f"class order {cfg.get('class_order')} (the benchmark's: the release's)")
    if run["mode"] not in ("overlap", "disjoint"):
        out.append(f"mode {run['mode']}")
    if ev.get("split") != "test":
        out.append(f"evaluated on the {ev.get('split')} pool (the benchmark: the test pool)")
    if cfg.get("max_test") is not None or ev.get("num_images") != ev.get("pool_num_images"):
        out.append(f"evaluated on {ev.get('num_images')} of the pool's {ev.get('pool_num_images')} images (--max-test)")
    return out


def reproduce_command(run: Mapping[str, Any]) -> str:
    """The ``cemnist-baselines run`` command line that trains this run again (its preset plus the protocol
    fields that differ from the preset; a field without a command-line flag is named in a comment)."""
    from .config import get_config

    src = str(run.get("method_source") or "")
    method = run["method"] if not src or src.startswith("cemnist_baselines.") else src
    preset = str(run.get("preset") or "default")
    parts = ["cemnist-baselines", "run", "--method", method, "--seeds", str(run["seed"])]
    if preset != "default":
        parts += ["--preset", preset]
    if run["setting"] != "2-2":
        parts += ["--setting", str(run["setting"])]
    if run["mode"] != "overlap":
        parts += ["--mode", str(run["mode"])]
    try:
        base = get_config(preset, setting=run["setting"], mode=run["mode"]).protocol()
    except ValueError:
        base = {}
    extra = []
    for k, v in run["protocol"].items():
        if base.get(k) == v or k in ("setting", "mode"):
            continue
        if k in _CLI_FLAGS:
            parts += [_CLI_FLAGS[k], str(v)]
        elif k == "amp_bf16":
            parts += ["--precision", "bf16" if v else "fp32"]
        else:
            extra.append(f"{k}={v!r}")
    parts += ["--out", f"runs/{run['method']}"]
    return " ".join(parts) + (f"   # also set in a TrainConfig: {', '.join(extra)}" if extra else "")


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{float(v):.3f}"


def eval_results_entries(run: Mapping[str, Any], group: Sequence[Mapping[str, Any]], *, benchmark: str,
                         source_url: str | None = None) -> list[dict[str, Any]]:
    """The ``.eval_results/*.yaml`` entries of a benchmark run (see the module docstring for the format)."""
    from cemnist_data.card import eval_task_id

    value = run["final"]["future_bg"]["miou_bg"]
    m, s = mean_std([r["final"]["future_bg"].get("miou_bg") for r in group])
    seeds = " ".join(str(r["seed"]) for r in group)
    row = f"mean {m:.4f}" + (f" ± {s:.4f}" if s is not None else "") + f" over seeds {seeds}"
    entry: dict[str, Any] = {
        "dataset": {"id": benchmark, "task_id": eval_task_id(run["mode"])},
        "value": round(float(value), 4),
    }
    if source_url is not None:
        entry["source"] = {"url": source_url, "name": "cemnist-baselines result (confusion matrices)"}
    entry["notes"] = (f"{run['method']} seed {run['seed']} ({row}); CEMNIST {run['dataset'].get('version')}, "
                      f"{run['setting']} {run['mode']}, protocol {protocol_id(run)} ({run.get('preset')} preset)")
    return [entry]


def _card(run: Mapping[str, Any], group: Sequence[Mapping[str, Any]], *, benchmark: str, num_params: int,
          eval_file: str | None, problems: Sequence[str], repo_id: str | None) -> str:
    import yaml

    from cemnist_data.card import eval_task_id

    from .artifacts import machine_label
    from .leaderboard import column_labels

    meta = {
        "license": "cc-by-sa-3.0",
        "library_name": "pytorch",
        "pipeline_tag": "image-segmentation",
        "datasets": [benchmark],
        "tags": ["continual-learning", "class-incremental", "semantic-segmentation", "cemnist", "cemnist-baselines",
                 str(run["method"])],
    }
    labels = column_labels(run["tasks"])
    seeds = " ".join(str(r["seed"]) for r in group)
    version = run["dataset"].get("version")
    lines = [f"# CEMNIST baseline: {run['method']} ({run['setting']} {run['mode']}, seed {run['seed']})", "",
             f"The model after the last task of a `cemnist-baselines` run of **{run['method']}** on CEMNIST {version} "
             f"(setting {run['setting']}, mode {run['mode']}, {len(run['tasks'])} tasks): `SimpleSegNet`, "
             f"{num_params:,} parameters. Method source: `{run.get('method_source')}`; method protocol values: "
             f"`{json.dumps(run.get('method_protocol', {}), sort_keys=True)}`.", ""]
    pool = f"{run['evaluation'].get('num_images'):,} images of the {run['evaluation'].get('split')} pool"
    lines += [f"## Results ({pool}, future classes counted as background)", "",
              f"| metric | this checkpoint (seed {run['seed']}) | its leaderboard row: mean ± std over seeds {seeds} |",
              "|---|---|---|"]
    for key in ("miou_bg", "miou", "first", "later", "old", "new", "forgetting_task", "task0_miou_bg"):
        mu, sd = mean_std([r["final"]["future_bg"].get(key) for r in group])
        own = run["final"]["future_bg"].get(key)
        name = labels.get(key, key) + (f" — benchmark task `{eval_task_id(run['mode'])}`"
                                       if key == "miou_bg" and not problems else "")
        lines.append(f"| {name} | {_fmt(own)} | {_fmt(mu)}" + (f" ± {_fmt(sd)}" if sd is not None else "") + " |")
    lines.append("")
    if eval_file is not None:
        lines += [f"`{eval_file}` reports this checkpoint's mIoU (bg) to the benchmark [`{benchmark}`]"
                  f"(https://huggingface.co/datasets/{benchmark}) (the Hub's eval results: the score shows on this "
                  "model's page and on the benchmark's leaderboard); its notes give the row's mean ± std.", ""]
    else:
        lines += ["**Not a benchmark result**, so this repo has no `.eval_results/` file: " + "; ".join(problems) + ".",
                  ""]
    proto = run["protocol"]
    lines += ["## Protocol", "", "| field | value |", "|---|---|"]
    lines += [f"| `{k}` | `{json.dumps(v)}` |" for k, v in proto.items()]
    lines += ["",
              f"Preset `{run.get('preset')}`, protocol id `{protocol_id(run)}`, precision {run.get('precision')}, "
              f"trained on {machine_label(run['env'])} with {run['env'].get('num_threads')} thread(s); "
              f"cemnist {run.get('package_version')}, commit `{run.get('git_commit')}`; run id `{run.get('run_id')}`. "
              "The same seed, protocol and thread count give bit-identical results on the same machine kind, and agree "
              "within `cemnist-baselines compare`'s tolerance elsewhere.", "",
              "## Reproduce", "", "```bash", f"pip install 'cemnist=={run.get('package_version')}'",
              reproduce_command(run), "```", "",
              "## Use", "", "```python", "import json", "import torch",
              "from safetensors.torch import load_file", "from cemnist_baselines import SimpleSegNet", "",
              "cfg = json.load(open(\"config.json\"))",
              "model = SimpleSegNet(cfg[\"num_classes\"], width=cfg[\"width\"]).eval()",
              "model.load_state_dict(load_file(\"model.safetensors\"))",
              "x = torch.zeros(1, 1, 60, 60)                 # images / 255, float32 [B, 1, 60, 60]",
              "labels = torch.tensor(cfg[\"channel_to_label\"])[model(x).argmax(1)]   # 0 background, d + 1 digit d",
              "```", "",
              "## Files", "",
              f"- `{MODEL_FILE}`, `{CONFIG_FILE}`: the weights and what is needed to use them",
              f"- `{RESULTS_DIR}/`: the result files of the row's runs, with the per-step confusion matrices every "
              f"number above is folded from (`cemnist-baselines validate {RESULTS_DIR}/` re-checks them)"]
    if eval_file is not None:
        lines.append(f"- `{eval_file}`: the score, in the Hub's eval-results format")
    lines += ["", f"Written by `cemnist-baselines export`{f' for `{repo_id}`' if repo_id else ''}. The weights were "
              "trained on CEMNIST, whose MNIST digits are under CC BY-SA 3.0 (see the dataset card).", ""]
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=120)
    return f"---\n{head}---\n\n" + "\n".join(lines)


# ----------------------------------------------------------------------------- writing and pushing
def _check_out(out: Path, *, overwrite: bool) -> None:
    """``out`` must be absent, empty, or (with ``overwrite``) an earlier export; nothing else is written over."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; pass a folder (it is created)")
    if not out.is_dir() or not any(out.iterdir()):
        return
    cfg = out / CONFIG_FILE
    try:
        earlier = json.loads(cfg.read_text(encoding="utf-8")).get("format") == EXPORT_FORMAT
    except (OSError, ValueError, AttributeError):
        earlier = False
    if not earlier:
        raise ValueError(f"--out {out} is not empty and is not an earlier export (no {CONFIG_FILE} of {EXPORT_FORMAT}); "
                         "choose an empty or new folder: nothing there is written over")
    if not overwrite:
        raise FileExistsError(f"--out {out} holds an earlier export; pass --overwrite to replace its files")


def export_run(source: str | Path, out: str | Path, *, method: str | None = None, mode: str | None = None,
               seed: int | None = None, checkpoints: str | Path | None = None, benchmark: str | None = None,
               repo_id: str | None = None, overwrite: bool = False) -> ExportedRepo:
    """Write the model repo folder of a run (see the module docstring); returns what was written.

    ``source``: a result JSON or a folder of them (then ``method`` / ``mode`` / ``seed`` choose, see
    :func:`select_run`); ``checkpoints``: where the run's ``checkpoints/`` folder is, if not beside it;
    ``benchmark``: the benchmark dataset id (default ``cemnist/cemnist``); ``repo_id``: the model repo the
    folder is meant for (links in the card and the eval result's ``source``).
    """
    import torch

    from cemnist_data.fileio import atomic_write_text
    from cemnist_data.labels import ID2LABEL
    from cemnist_data.registry import HUB_REPO_ID

    from .artifacts import atomic_save_safetensors
    from .model import SimpleSegNet, count_parameters

    benchmark = benchmark or HUB_REPO_ID
    for name, rid in (("--benchmark", benchmark), ("--repo-id", repo_id)):
        if rid is not None and (rid.count("/") != 1 or not all(rid.split("/"))):
            raise ValueError(f"{name} must be 'owner/name', got {rid!r}")
    out = Path(out)
    _check_out(out, overwrite=overwrite)
    run, group = select_run(source, method=method, mode=mode, seed=seed)
    state, num_classes = _load_final_state(run, final_checkpoint(run, checkpoints=checkpoints))
    width = int(run["config"].get("width", 32))
    model = SimpleSegNet(num_classes, width=width)
    model.load_state_dict(state)  # strict: the weights fit the architecture the card names
    ch2lab = [0] + [d + 1 for ts in run["tasks"] for d in ts]
    if len(ch2lab) != num_classes:
        raise ValueError(f"the final checkpoint has {num_classes} output channels but the run's tasks name "
                         f"{len(ch2lab) - 1} digits; it is not this run's final model")
    problems = benchmark_problems(run)
    stem = Path(run["_path"]).stem
    source_url = f"https://huggingface.co/{repo_id}/blob/main/{RESULTS_DIR}/{stem}.json" if repo_id else None
    entries = None if problems else eval_results_entries(run, group, benchmark=benchmark, source_url=source_url)
    eval_file = f"{EVAL_DIR}/{benchmark.split('/')[1]}.yaml" if entries is not None else None

    out.mkdir(parents=True, exist_ok=True)
    files = []
    tensors = {k: v.detach().to(torch.float32 if v.is_floating_point() else v.dtype) for k, v in state.items()}
    atomic_save_safetensors(out / MODEL_FILE, tensors, {"format": EXPORT_FORMAT, "method": str(run["method"]),
                                                         "seed": str(run["seed"]), "run_id": str(run.get("run_id"))})
    files.append(MODEL_FILE)
    config = {
        "format": EXPORT_FORMAT, "architecture": "SimpleSegNet", "num_classes": num_classes, "width": width,
        "input": "float32 [B, 1, 60, 60]: the uint8 image / 255", "channel_to_label": ch2lab,
        "id2label": {str(k): v for k, v in ID2LABEL.items()},
        "method": run["method"], "method_source": run.get("method_source"), "seed": int(run["seed"]),
        "run_id": run.get("run_id"), "setting": run["setting"], "mode": run["mode"], "tasks": run["tasks"],
        "protocol": run["protocol"], "method_protocol": run.get("method_protocol", {}),
        "dataset": {"id": benchmark, "version": run["dataset"].get("version")},
    }
    atomic_write_text(out / CONFIG_FILE, json.dumps(config, indent=1) + "\n")
    files.append(CONFIG_FILE)
    for r in group:
        name = f"{RESULTS_DIR}/{Path(r['_path']).name}"
        atomic_write_text(out / name, Path(r["_path"]).read_text(encoding="utf-8"))
        files.append(name)
    if entries is not None:
        import yaml

        text = ("# The Hub's eval results (https://huggingface.co/docs/hub/eval-results): this model's score on the "
                f"benchmark {benchmark}.\n" + yaml.safe_dump(entries, sort_keys=False, allow_unicode=True, width=120))
        atomic_write_text(out / eval_file, text)
        files.append(eval_file)
    elif (out / EVAL_DIR).is_dir():  # an earlier export of a benchmark run: its score must not stay beside this one
        for p in (out / EVAL_DIR).glob("*.yaml"):
            p.unlink()
    if problems:
        warnings.warn(f"{run['_path']} is not a CEMNIST benchmark result ({'; '.join(problems)}): the folder has no "
                      f"{EVAL_DIR}/ file", UserWarning, stacklevel=2)
    atomic_write_text(out / CARD_FILE, _card(run, group, benchmark=benchmark, num_params=count_parameters(model),
                                             eval_file=eval_file, problems=problems, repo_id=repo_id))
    files.append(CARD_FILE)
    return ExportedRepo(folder=out, run=run, group=group, files=sorted(files), eval_results=entries, problems=problems)


def push_model_repo(folder: str | Path, repo_id: str, *, api: Any = None, private: bool | None = None,
                    commit_message: str | None = None) -> str:
    """Create the model repo ``repo_id`` if needed and upload ``folder`` in one commit (result and eval-results
    files the folder lacks are deleted in that commit); returns the commit id.

    ``private=None`` leaves a new repo's visibility to the Hub's default. A Hub that cannot be reached or
    refuses is a :class:`cemnist_data.publish.HubError` with one line saying what is on the Hub.
    """
    from cemnist_data.publish import call_hub, default_api

    api = api if api is not None else default_api()
    where = f"{repo_id} (model repo)"
    call_hub(api.create_repo, repo_id, repo_type="model", exist_ok=True, private=private,
          doing=f"creating {where}", state="nothing was uploaded")
    info = call_hub(api.upload_folder, repo_id=repo_id, repo_type="model", folder_path=str(folder),
                 commit_message=commit_message or "CEMNIST baseline (cemnist-baselines export)",
                 allow_patterns=list(UPLOAD_PATTERNS), delete_patterns=list(DELETE_PATTERNS),
                 doing=f"uploading {folder} to {where}",
                 state="no commit was made (a commit is all or nothing); run the same command again")
    return str(getattr(info, "oid", "") or "")

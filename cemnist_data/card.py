"""The dataset card: Hub YAML metadata generated from a manifest + the prose body shipped in the package.

A release and a custom build get different cards: a custom build (any spec other than the published
release's) is titled and versioned as ``<version>+custom.<spec hash>``, names its spec and how it
differs from the release, and never claims the release's Hub tag.
"""

from __future__ import annotations

from importlib import resources
from string import Template
from typing import Any

from .labels import ID2LABEL
from .registry import CITATION, HOMEPAGE, HUB_REPO_ID, LICENSE, LICENSE_CREDIT, MNIST_HUB_ID, display_version, shipped_manifest_for
from .spec import SPLITS, CemnistSpec, config_name

__all__ = ["card_yaml", "render_readme", "card_body", "ordered_configs", "eval_yaml", "eval_yaml_text", "eval_task_id",
           "PREVIEW_PATH", "CARD_SECTIONS", "EVAL_FRAMEWORK", "EVAL_YAML"]

PREVIEW_PATH = "images/preview.png"  # == cemnist_data.preview.PREVIEW_PATH (kept import-light here)

CARD_SECTIONS = (
    "Dataset Details", "Dataset Description", "Dataset Sources", "Uses", "Direct Use", "Out-of-Scope Use",
    "Dataset Structure", "Dataset Creation", "Curation Rationale", "Source Data", "Data Collection and Processing",
    "Who are the source data producers?", "Annotations", "Annotation process", "Who are the annotators?",
    "Personal and Sensitive Information", "Bias, Risks, and Limitations", "Recommendations", "Citation",
    "Glossary", "More Information", "Dataset Card Authors", "Dataset Card Contact",
)
"""The sections of the Hugging Face dataset-card template, in its order; every card has each."""


def ordered_configs(manifest: dict[str, Any]) -> list[str]:
    """Config names in release order (overlap tasks, disjoint tasks, joint)."""
    return CemnistSpec.from_dict(manifest["spec"]).config_names()


def _size_category(n: int) -> str:
    for lo, hi, name in ((0, 1_000, "n<1K"), (1_000, 10_000, "1K<n<10K"), (10_000, 100_000, "10K<n<100K"),
                         (100_000, 1_000_000, "100K<n<1M")):
        if lo <= n < hi:
            return name
    return "1M<n<10M"


def _is_release(manifest: dict[str, Any]) -> bool:
    return shipped_manifest_for(manifest) is not None


def card_yaml(manifest: dict[str, Any]) -> dict[str, Any]:
    """Hub card metadata (licence, task ids, source dataset, ``configs`` and ``dataset_info``).

    ``dataset_info`` gives features, row counts, ``download_size`` (the parquet bytes) and the Arrow
    sizes that ``datasets`` calls ``num_bytes`` / ``dataset_size`` (recorded by the builder; left out
    for manifests that lack them rather than guessed).
    """
    from .features import FEATURES

    configs, infos = [], []
    total_rows = 0
    for i, name in enumerate(ordered_configs(manifest)):
        cfg = manifest["configs"][name]
        entry: dict[str, Any] = {
            "config_name": name,
            "data_files": [{"split": s, "path": f"data/{name}/{s}-*.parquet"} for s in SPLITS],
        }
        if i == 0:
            entry["default"] = True
        configs.append(entry)
        splits = []
        size = arrow = 0
        for s in SPLITS:
            f = manifest["files"].get(f"data/{name}/{s}-00000-of-00001.parquet", {})
            size += int(f.get("bytes", 0))
            rows = int(cfg["splits"][s]["num_rows"])
            total_rows += rows
            splits.append({"name": s, "num_bytes": int(f.get("arrow_bytes", 0)), "num_examples": rows})
        info: dict[str, Any] = {"config_name": name, "features": FEATURES._to_yaml_list(), "splits": splits,
                                "download_size": size}
        if all(sp["num_bytes"] for sp in splits):  # Arrow sizes, as datasets defines them (absent: left out)
            info["dataset_size"] = sum(sp["num_bytes"] for sp in splits)
        else:
            for sp in splits:
                del sp["num_bytes"]
        infos.append(info)
    release = _is_release(manifest)
    return {
        "pretty_name": "CEMNIST (Continual Extended MNIST)" if release
        else f"CEMNIST custom build {display_version(manifest)} (not a release)",
        "license": LICENSE,
        "task_categories": ["image-segmentation"],
        "task_ids": ["semantic-segmentation"],
        "size_categories": [_size_category(total_rows)],
        "annotations_creators": ["machine-generated"],
        "source_datasets": [f"extended|{MNIST_HUB_ID}"],
        "tags": ["continual-learning", "class-incremental", "semantic-segmentation", "background-shift",
                 "catastrophic-forgetting", "mnist", "synthetic", "benchmark"],
        "configs": configs,
        "dataset_info": infos,
    }


def _spec_differences(manifest: dict[str, Any]) -> list[str]:
    from .registry import LATEST_VERSION, load_manifest

    ref = load_manifest(LATEST_VERSION)["spec"]
    spec = manifest["spec"]
    return [f"`{k}` = `{spec.get(k)}` (release {LATEST_VERSION}: `{ref.get(k)}`)" for k in sorted(set(spec) | set(ref))
            if spec.get(k) != ref.get(k)]


def _build_command(manifest: dict[str, Any]) -> str:
    spec, default = manifest["spec"], CemnistSpec().to_dict()
    parts = ["cemnist build --out DIR"]
    if spec["setting"] != default["setting"]:
        parts.append(f"--setting {spec['setting']}")
    if spec["seed"] != default["seed"]:
        parts.append(f"--seed {spec['seed']}")
    if list(spec["class_order"]) != list(default["class_order"]):
        parts.append("--class-order " + " ".join(map(str, spec["class_order"])))
    for k in ("train_per_task", "validation_per_task", "test_pool"):
        if spec[k] != default[k]:
            parts.append(f"--{k.replace('_', '-')} {spec[k]}")
    return " ".join(parts)


def card_body(manifest: dict[str, Any], *, preview: str = PREVIEW_PATH) -> str:
    """The card's Markdown body (``card/DATASET_CARD.body.md`` with this build's numbers filled in)."""
    text = resources.files("cemnist_data").joinpath("card", "DATASET_CARD.body.md").read_text(encoding="utf-8")
    spec = manifest["spec"]
    tasks = manifest["tasks"]
    release = _is_release(manifest)
    rows = []
    for name in ordered_configs(manifest):
        cfg = manifest["configs"][name]
        counts = " | ".join(f"{cfg['splits'][s]['num_rows']:,}" for s in SPLITS)
        rows.append(f"| `{name}` | {counts} | `{cfg['splits']['test']['content_sha256'][:16]}…` |")
    task_rows = "\n".join(f"| {t} | {', '.join(map(str, d))} | {', '.join(str(x + 1) for x in d)} |" for t, d in enumerate(tasks))
    version = display_version(manifest)
    if release:
        status = (f"This is **release {version}**, published on the Hub as [`{HUB_REPO_ID}`]({HOMEPAGE}) at tag "
                  f"`v{version}`; its content hashes ship inside the `cemnist` Python package.")
        hub_load = (f"With plain `datasets`, from the Hub or from a local copy of this folder:\n"
                    f"`datasets.load_dataset(\"{HUB_REPO_ID}\", \"overlap-task2\", revision=\"v{version}\")`.")
        notes = ("- **1.0.0**: first release: setting 2-2, modes overlap and disjoint, `joint` config; 2,500 train and\n"
                 "  500 validation images per task, a test pool of 5,000 images.")
    else:
        diffs = "\n".join(f"  - {d}" for d in _spec_differences(manifest)) or "  - (none)"
        status = (f"**This is a custom build, not a CEMNIST release.** It follows the rules of release "
                  f"{manifest['version']} with another spec:\n\n{diffs}\n\nIts version `{version}` names the spec's hash; "
                  f"`cemnist verify` checks it against its own `manifest.json` only. Rebuild it byte for byte with "
                  f"`{_build_command(manifest)}`.")
        hub_load = ("With plain `datasets`, from this folder or from the Hub repo it was published to:\n"
                    "`datasets.load_dataset(\"<this folder or owner/name>\", \"overlap-task0\")`.")
        notes = f"- **{version}**: custom build (see above); not a release, no release notes."
    labels = ", ".join(f"`{i}` {n}" for i, n in ID2LABEL.items())
    return Template(text).substitute(
        version=version,
        status=status,
        hub_load=hub_load,
        release_notes=notes,
        preview=preview,
        repo_id=HUB_REPO_ID,
        homepage=HOMEPAGE,
        mnist_hub_id=MNIST_HUB_ID,
        seed=spec["seed"],
        setting=spec["setting"],
        class_order=", ".join(map(str, spec["class_order"])),
        train_per_task=f"{spec['train_per_task']:,}",
        validation_per_task=f"{spec['validation_per_task']:,}",
        test_pool=f"{spec['test_pool']:,}",
        num_tasks=len(tasks),
        last_task=len(tasks) - 1,
        config_table="\n".join(rows),
        task_table=task_rows,
        id2label=labels,
        credit=LICENSE_CREDIT,
        headline=HEADLINE_TEXT,
        citation=CITATION,
    )


def render_readme(manifest: dict[str, Any], *, preview: str = PREVIEW_PATH) -> str:
    """README.md of a release folder: YAML front matter + card body (``preview``: the picture's path)."""
    import yaml

    meta = yaml.safe_dump(card_yaml(manifest), sort_keys=False, allow_unicode=True, width=120)
    return f"---\n{meta}---\n\n{card_body(manifest, preview=preview)}"


# ---------------------------------------------------------------------------------------------
# eval.yaml: the file that registers the dataset repo as a Hub benchmark

EVAL_YAML = "eval.yaml"
EVAL_FRAMEWORK = "cemnist-baselines"
"""The harness that computes the scores (``evaluation_framework`` of ``eval.yaml``)."""
HEADLINE_TEXT = ("task `final_miou_bg_overlap`, the final mIoU with background after the last task, mode overlap, "
                 "on the whole test pool, future classes counted as background")


def eval_task_id(mode: str) -> str:
    """The ``eval.yaml`` task id of a mode's final mIoU (bg): ``final_miou_bg_overlap`` (the headline) or
    ``final_miou_bg_disjoint``; ``.eval_results/*.yaml`` files name it as ``dataset.task_id``."""
    if mode not in ("overlap", "disjoint"):
        raise ValueError(f"mode must be 'overlap' or 'disjoint', got {mode!r}")
    return f"final_miou_bg_{mode}"


def eval_yaml(manifest: dict[str, Any]) -> dict[str, Any]:
    """The benchmark registration of a release folder, in the format of the Hub's "Evaluation Results" page
    (https://huggingface.co/docs/hub/eval-results, "Registering a Benchmark": ``name``, ``description``,
    ``evaluation_framework`` and ``tasks`` with ``id``, ``config`` and ``split``).

    Two tasks, both scored on the whole test pool (the last task's ``test`` split, the same images in both
    modes): ``final_miou_bg_overlap`` — the headline: final mIoU with background, future classes counted as
    background — and ``final_miou_bg_disjoint``. Values are in [0, 1], as on the CEMNIST leaderboard.
    """
    last = len(manifest["tasks"]) - 1
    release = _is_release(manifest)
    setting = manifest["spec"]["setting"]
    name = "CEMNIST (Continual Extended MNIST)" if release else f"CEMNIST custom build {display_version(manifest)}"
    description = (
        f"Class-incremental semantic segmentation of MNIST digits ({setting}: {len(manifest['tasks'])} tasks, "
        "background shift). A result is the mIoU with background (0 to 1) of the model after its last task, "
        "on every pixel of the whole test pool, with classes not yet learned counted as background (the "
        f"released test masks' convention). Task {eval_task_id('overlap')} is the headline (mode overlap); "
        f"task {eval_task_id('disjoint')} scores the disjoint stream on the same images. Scores are computed by "
        "cemnist-baselines (`cemnist-baselines run`), whose result files record the confusion matrices they "
        "come from; `cemnist-baselines export` writes a model repo folder with its .eval_results file."
    )
    if not release:
        description += f" This is a custom build ({display_version(manifest)}), not the CEMNIST release."
    return {
        "name": name,
        "description": description,
        "evaluation_framework": EVAL_FRAMEWORK,
        "tasks": [{"id": eval_task_id(mode), "config": config_name(mode, last), "split": "test"}
                  for mode in ("overlap", "disjoint")],
    }


def eval_yaml_text(manifest: dict[str, Any]) -> str:
    """``eval.yaml`` as written into a release folder."""
    import yaml

    return ("# Registers this dataset repo as a Hub benchmark (https://huggingface.co/docs/hub/eval-results).\n"
            + yaml.safe_dump(eval_yaml(manifest), sort_keys=False, allow_unicode=True, width=100))

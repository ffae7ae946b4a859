"""The dataset card: Hub YAML metadata generated from a manifest + the prose body shipped in the package."""

from __future__ import annotations

from importlib import resources
from string import Template
from typing import Any

import yaml

from .features import FEATURES
from .registry import HUB_REPO_ID, LICENSE, LICENSE_CREDIT
from .spec import SPLITS, CemnistSpec

__all__ = ["card_yaml", "render_readme", "card_body", "ordered_configs"]


def ordered_configs(manifest: dict[str, Any]) -> list[str]:
    """Config names in release order (overlap tasks, disjoint tasks, joint)."""
    return CemnistSpec.from_dict(manifest["spec"]).config_names()


def _size_category(n: int) -> str:
    for lo, hi, name in ((0, 1_000, "n<1K"), (1_000, 10_000, "1K<n<10K"), (10_000, 100_000, "10K<n<100K"),
                         (100_000, 1_000_000, "100K<n<1M")):
        if lo <= n < hi:
            return name
    return "1M<n<10M"


def card_yaml(manifest: dict[str, Any]) -> dict[str, Any]:
    """Hub card metadata (licence, task ids, ``configs`` and ``dataset_info``) for a release manifest."""
    configs, infos = [], []
    total_rows = 0
    for i, name in enumerate(ordered_configs(manifest)):
        cfg = manifest["configs"][name]
        entry: dict[str, Any] = {
            "config_name": name,
            "data_files": [
                {"split": s, "path": f"data/{name}/{s}-*.parquet"} for s in SPLITS
            ],
        }
        if i == 0:
            entry["default"] = True
        configs.append(entry)
        splits = []
        size = 0
        for s in SPLITS:
            rel = f"data/{name}/{s}-00000-of-00001.parquet"
            nbytes = int(manifest["files"].get(rel, {}).get("bytes", 0))
            rows = int(cfg["splits"][s]["num_rows"])
            total_rows += rows
            size += nbytes
            splits.append({"name": s, "num_bytes": nbytes, "num_examples": rows})
        infos.append({
            "config_name": name,
            "features": FEATURES._to_yaml_list(),
            "splits": splits,
            "download_size": size,
            "dataset_size": size,
        })
    return {
        "pretty_name": "CEMNIST (Continual Extended MNIST)",
        "license": LICENSE,
        "task_categories": ["image-segmentation"],
        "task_ids": ["semantic-segmentation"],
        "size_categories": [_size_category(total_rows)],
        "annotations_creators": ["machine-generated"],
        "source_datasets": ["extended|mnist"],
        "tags": ["continual-learning", "class-incremental", "semantic-segmentation", "background-shift",
                 "catastrophic-forgetting", "mnist", "synthetic", "benchmark"],
        "configs": configs,
        "dataset_info": infos,
    }


def card_body(manifest: dict[str, Any]) -> str:
    """The card's Markdown body (``card/DATASET_CARD.body.md`` with the release's numbers filled in)."""
    text = resources.files("cemnist_data").joinpath("card", "DATASET_CARD.body.md").read_text(encoding="utf-8")
    spec = manifest["spec"]
    tasks = manifest["tasks"]
    rows = []
    for name in ordered_configs(manifest):
        cfg = manifest["configs"][name]
        counts = " | ".join(f"{cfg['splits'][s]['num_rows']:,}" for s in SPLITS)
        rows.append(f"| `{name}` | {counts} | `{cfg['splits']['test']['content_sha256'][:16]}…` |")
    task_rows = "\n".join(f"| {t} | {', '.join(map(str, d))} | {', '.join(str(x + 1) for x in d)} |" for t, d in enumerate(tasks))
    return Template(text).substitute(
        version=manifest["version"],
        tag=f"v{manifest['version']}",
        repo_id=HUB_REPO_ID,
        seed=spec["seed"],
        setting=spec["setting"],
        train_per_task=f"{spec['train_per_task']:,}",
        validation_per_task=f"{spec['validation_per_task']:,}",
        test_pool=f"{spec['test_pool']:,}",
        num_tasks=len(tasks),
        config_table="\n".join(rows),
        task_table=task_rows,
        credit=LICENSE_CREDIT,
    )


def render_readme(manifest: dict[str, Any]) -> str:
    """README.md of a release folder: YAML front matter + card body."""
    meta = yaml.safe_dump(card_yaml(manifest), sort_keys=False, allow_unicode=True, width=120)
    return f"---\n{meta}---\n\n{card_body(manifest)}"

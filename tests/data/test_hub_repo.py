"""A release folder is a complete, truthful Hub repo whose card is DATASET_CARD.md (the committed card of the
published release)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from huggingface_hub import DatasetCard

from cemnist_data.card import CARD_SECTIONS, render_readme
from cemnist_data.release import build_release
from cemnist_data.spec import CemnistSpec

SMALL = dict(train_per_task=12, validation_per_task=4, test_pool=30)


def _template_sections() -> list[str]:
    import huggingface_hub

    text = (Path(huggingface_hub.__file__).parent / "templates" / "datasetcard_template.md").read_text()
    heads = [re.sub(r"\s*\[optional\]\s*$", "", m.group(1)).strip() for m in re.finditer(r"^#{2,4} (.+)$", text, re.M)]
    return [h for h in heads if "{{" not in h]


def _headings(card: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^#{1,4} (.+)$", card, re.M)]


def _referenced_files(card: str) -> set[str]:
    """Local files a card points to: pictures and links (not URLs), and data_files of its YAML."""
    meta = yaml.safe_load(card.split("---\n")[1])
    refs = {m.group(1) for m in re.finditer(r"\]\(([^)\s]+)\)", card) if not m.group(1).startswith(("http", "#"))}
    for cfg in meta["configs"]:
        refs |= {d["path"] for d in cfg["data_files"]}
    return refs


@pytest.mark.parametrize("custom", [False, True])
def test_every_file_the_card_references_is_in_the_folder(tmp_path: Path, custom: bool) -> None:
    spec = CemnistSpec(setting="5-1", seed=3, **SMALL) if custom else CemnistSpec(**SMALL)
    out = tmp_path / "rel"
    manifest = build_release(out, spec=spec, progress=False)
    card = (out / "README.md").read_text()
    assert card == render_readme(manifest)
    for ref in _referenced_files(card):
        assert list(out.glob(ref)), f"the card references {ref}, which the folder lacks"
    assert "images/preview.png" in _referenced_files(card)
    for f in ("id2label.json", ".gitattributes", "manifest.json"):
        assert (out / f).is_file()
    assert "*.parquet filter=lfs diff=lfs merge=lfs -text" in (out / ".gitattributes").read_text()


def test_a_custom_build_card_describes_the_build_not_the_release(tmp_path: Path) -> None:
    out = tmp_path / "custom"
    manifest = build_release(out, spec=CemnistSpec(setting="5-1", seed=3, **SMALL), progress=False)
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert re.search(r"custom build 1\.0\.0\+custom\.[0-9a-f]{8} \(not a release\)", meta["pretty_name"])
    assert "**This is a custom build, not a CEMNIST release.**" in card
    assert "release 1.0.0" not in card.replace("rules of release 1.0.0", "").replace("(release 1.0.0:", "")
    assert "v1.0.0" not in card and "tag `v" not in card
    assert "`setting` = `5-1` (release 1.0.0: `2-2`)" in card and "`seed` = `3` (release 1.0.0: `0`)" in card
    assert "cemnist build --out DIR --setting 5-1 --seed 3 --train-per-task 12" in card
    assert "setting `5-1`" in card and f"{len(manifest['tasks'])} tasks" in card
    assert [c["config_name"] for c in meta["configs"]][-1] == "joint" and len(meta["configs"]) == 13


def test_the_card_parses_and_covers_every_template_section(release) -> None:
    card_text = (release.path / "README.md").read_text()
    card = DatasetCard(card_text)
    data = card.data.to_dict()
    assert data["license"] == "cc-by-sa-3.0" and data["source_datasets"] == ["extended|ylecun/mnist"]
    heads = _headings(card_text)
    for section in _template_sections():
        assert section in heads, f"the card has no section {section!r}"
    assert list(CARD_SECTIONS) == [s for s in _template_sections() if s in CARD_SECTIONS]
    for must in ("The evaluation protocol", "An example record", "Out-of-Scope Use", "Recommendations"):
        assert must in heads
    for key in ("cermelli2020mib", "michieli2019ilt", "douillard2021plop", "douillard2021continuum", "lecun1998mnist",
                "cemnist2026"):
        assert key in card_text
    assert "**Seed tutorial:**" in card_text and "The default config is `overlap-task0`" in card_text


def test_yaml_sizes_are_those_datasets_computes(release, tmp_path: Path) -> None:
    import datasets

    meta = yaml.safe_load((release.path / "README.md").read_text().split("---\n")[1])
    info = next(i for i in meta["dataset_info"] if i["config_name"] == "overlap-task1")
    builder = datasets.load_dataset_builder(str(release.path), "overlap-task1", cache_dir=str(tmp_path / "hf"))
    builder.download_and_prepare()
    measured = {name: s.num_bytes for name, s in builder.info.splits.items()}
    assert {s["name"]: s["num_bytes"] for s in info["splits"]} == measured
    assert info["dataset_size"] == sum(measured.values())


# --- the benchmark registration, and card metadata for an image dataset ---------------


def test_card_metadata_has_no_text_only_keys(release) -> None:
    meta = yaml.safe_load((release.path / "README.md").read_text().split("---\n")[1])
    for key in ("language", "multilinguality", "language_creators"):
        assert key not in meta, f"{key} describes text; CEMNIST has none"
    data = DatasetCard((release.path / "README.md").read_text()).data.to_dict()
    assert data["pretty_name"] == "CEMNIST (Continual Extended MNIST)" and "image-segmentation" in data["task_categories"]


@pytest.mark.parametrize("custom", [False, True])
def test_eval_yaml_registers_the_benchmark_in_the_documented_format(tmp_path: Path, custom: bool) -> None:
    """https://huggingface.co/docs/hub/eval-results: name, description, evaluation_framework, tasks[id, config, split]."""
    from cemnist_data.card import eval_yaml_text

    spec = CemnistSpec(setting="5-1", seed=3, **SMALL) if custom else CemnistSpec(**SMALL)
    out = tmp_path / "rel"
    manifest = build_release(out, spec=spec, progress=False)
    text = (out / "eval.yaml").read_text()
    assert text == eval_yaml_text(manifest)
    ev = yaml.safe_load(text)
    assert set(ev) == {"name", "description", "evaluation_framework", "tasks"}
    assert ev["evaluation_framework"] == "cemnist-baselines" and "not yet learned counted as background" in ev["description"]
    configs = {c["config_name"] for c in yaml.safe_load((out / "README.md").read_text().split("---\n")[1])["configs"]}
    last = len(manifest["tasks"]) - 1
    assert ev["tasks"] == [{"id": "final_miou_bg_overlap", "config": f"overlap-task{last}", "split": "test"},
                           {"id": "final_miou_bg_disjoint", "config": f"disjoint-task{last}", "split": "test"}]
    assert {t["config"] for t in ev["tasks"]} <= configs
    # the whole pool: the last task's test split holds every pool image
    assert manifest["configs"][f"overlap-task{last}"]["splits"]["test"]["num_rows"] == spec.test_pool
    assert ev["name"].startswith("CEMNIST custom build") and "not the CEMNIST release" in ev["description"]  # SMALL too


def test_cemnist_card_dir_rewrites_the_card_and_eval_yaml(release, tmp_path: Path) -> None:
    import shutil

    from cemnist_data.cli import main as cli_main

    folder = tmp_path / "rel"
    shutil.copytree(release.path, folder)
    (folder / "eval.yaml").unlink()
    (folder / "README.md").write_text("edited")
    assert cli_main(["card", "--dir", str(folder)]) == 0
    assert (folder / "README.md").read_text() == (release.path / "README.md").read_text()
    assert (folder / "eval.yaml").read_text() == (release.path / "eval.yaml").read_text()
    ev = yaml.safe_load((folder / "eval.yaml").read_text())
    assert ev["name"] == "CEMNIST (Continual Extended MNIST)" and "custom" not in ev["description"]

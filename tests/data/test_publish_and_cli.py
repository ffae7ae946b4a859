"""Publishing (against RecordingHfApi, a recording fake of HfApi: no network) and the `cemnist` CLI."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cemnist_data.cli import main as cli_main
from cemnist_data.publish import UPLOAD_PATTERNS, publish_release
from cemnist_data.spec import CemnistSpec
from cemnist_data.release import build_release

REPO = Path(__file__).resolve().parents[2]


class RecordingHfApi:
    """A recording fake of huggingface_hub.HfApi: it records each call and uploads nothing (no network)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_repo(self, repo_id: str, **kw: Any) -> None:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))

    def upload_folder(self, **kw: Any) -> None:
        self.calls.append(("upload_folder", kw))

    def create_tag(self, repo_id: str, **kw: Any) -> None:
        self.calls.append(("create_tag", {"repo_id": repo_id, **kw}))


def test_publish_calls_the_hub_api_in_order(release, tmp_path: Path) -> None:
    folder = tmp_path / "rel"
    shutil.copytree(release.path, folder)
    api = RecordingHfApi()
    plan = publish_release(folder, api=api)
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder", "create_tag"]
    assert api.calls[0][1] == {"repo_id": "cemnist/cemnist", "repo_type": "dataset", "exist_ok": True, "private": False}
    assert api.calls[1][1]["folder_path"] == str(folder) and api.calls[1][1]["repo_type"] == "dataset"
    assert api.calls[1][1]["allow_patterns"] == UPLOAD_PATTERNS
    assert api.calls[2][1]["tag"] == "v1.0.0" and plan.release
    for f in ("README.md", "manifest.json", "id2label.json", ".gitattributes", "images/preview.png"):
        assert f in plan.files
    assert sum(f.endswith(".parquet") for f in plan.files) == 33 and len(plan.files) == 38


def test_publish_dry_run_makes_no_calls(release) -> None:
    api = RecordingHfApi()
    plan = publish_release(release.path, api=api, dry_run=True)
    assert api.calls == [] and plan.tag == "v1.0.0" and plan.repo_id == "cemnist/cemnist"


def test_publish_a_custom_build_under_the_users_own_repo_id(tmp_path: Path) -> None:
    out = tmp_path / "small"
    build_release(out, spec=CemnistSpec(train_per_task=10, validation_per_task=5, test_pool=20), progress=False)
    api = RecordingHfApi()
    with pytest.raises(ValueError, match=r"custom build \(1\.0\.0\+custom\.[0-9a-f]{8}\).*--repo-id OWNER/NAME"):
        publish_release(out, api=api)
    with pytest.raises(ValueError, match="holds the CEMNIST releases only"):
        publish_release(out, api=api, repo_id="cemnist/cemnist")
    assert api.calls == []
    plan = publish_release(out, api=api, repo_id="alice/cemnist-small", private=True)
    assert re.fullmatch(r"v1\.0\.0-custom\.[0-9a-f]{8}", plan.tag) and not plan.release
    assert api.calls[0][1]["private"] is True and api.calls[2][1]["tag"] == plan.tag
    assert "not a release" in api.calls[1][1]["commit_message"]


def test_publish_refuses_an_edited_card_or_an_incomplete_folder(release, tmp_path: Path) -> None:
    folder = tmp_path / "rel"
    shutil.copytree(release.path, folder)
    (folder / "README.md").write_text((folder / "README.md").read_text().replace("release 1.0.0", "release 2.0.0"))
    with pytest.raises(ValueError, match="is not the card that its manifest gives"):
        publish_release(folder, api=RecordingHfApi())
    assert cli_main(["card", "--dir", str(folder)]) == 0
    (folder / "id2label.json").unlink()
    with pytest.raises(ValueError, match=r"not a complete release folder: \['id2label.json'\] missing"):
        publish_release(folder, api=RecordingHfApi())


def test_cli_publish_dry_run(release, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["publish", str(release.path), "--dry-run", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "would upload 38 files of release 1.0.0" in out and "to datasets/cemnist/cemnist, tag v1.0.0" in out
    assert "  images/preview.png" in out


def test_cli_build_verify_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    assert cli_main(["build", "--out", str(out), "--train-per-task", "20", "--validation-per-task", "5",
                     "--test-pool", "30", "--setting", "5-5", "--quiet"]) == 0
    assert "5 configs" in capsys.readouterr().out  # 5-5: two tasks x two modes + joint
    assert cli_main(["verify", str(out)]) == 0
    assert "match its own manifest" in capsys.readouterr().out
    assert cli_main(["info", str(out)]) == 0
    assert "task 1: digits [5, 6, 7, 8, 9]" in capsys.readouterr().out
    # damage one file: verify fails with exit 2 and names it
    f = next((out / "data" / "joint").glob("train-*.parquet"))
    f.write_bytes(f.read_bytes()[:-100])
    assert cli_main(["verify", str(out), "--quiet"]) == 3  # integrity failure
    assert "joint/train" in capsys.readouterr().err


def test_cli_bad_input_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli_main(["build", "--out", str(tmp_path / "x"), "--setting", "3-2", "--quiet"]) == 2
    assert "unknown setting '3-2'" in capsys.readouterr().err
    assert cli_main(["build", "--out", str(tmp_path / "x"), "--train-per-task", "0", "--quiet"]) == 2
    assert "train_per_task must be a positive integer, got 0" in capsys.readouterr().err


def test_console_script_info_runs() -> None:
    exe = Path(sys.executable).with_name("cemnist")
    res = subprocess.run([str(exe), "info"], capture_output=True, text=True, check=True)
    assert "overlap-task4" in res.stdout and "2-2" in res.stdout


def test_dataset_card_in_repo_is_generated_from_the_shipped_manifest() -> None:
    from cemnist_data.card import render_readme
    from cemnist_data.registry import load_manifest

    text = render_readme(load_manifest("1.0.0"), preview="docs/img/release_preview.png")
    assert (REPO / "DATASET_CARD.md").read_text() == text
    assert (REPO / "docs/img/release_preview.png").is_file()

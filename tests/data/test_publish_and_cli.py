"""Publishing (against RecordingHfApi, a recording fake of HfApi in tests/fake_hub.py: no network) and the CLI."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fake_hub import RecordingHfApi, connect_error

from cemnist_data import publish
from cemnist_data.cli import main as cli_main
from cemnist_data.publish import DELETE_PATTERNS, UPLOAD_PATTERNS, HubError, publish_release
from cemnist_data.spec import CemnistSpec
from cemnist_data.release import build_release

REPO = Path(__file__).resolve().parents[2]


def test_publish_calls_the_hub_api_in_order(release, tmp_path: Path) -> None:
    folder = tmp_path / "rel"
    shutil.copytree(release.path, folder)
    api = RecordingHfApi()
    plan = publish_release(folder, api=api)
    assert [c[0] for c in api.calls] == ["repo_info", "create_repo", "upload_folder", "create_tag"]
    assert api.calls[1][1] == {"repo_id": "cemnist/cemnist", "repo_type": "dataset", "exist_ok": True, "private": None}
    up = api.calls[2][1]
    assert up["folder_path"] == str(folder) and up["repo_type"] == "dataset"
    assert up["allow_patterns"] == UPLOAD_PATTERNS and up["delete_patterns"] == DELETE_PATTERNS == ["data/**"]
    repo = api.repos[("dataset", "cemnist/cemnist")]
    assert api.calls[3][1]["tag"] == "v1.0.0" and api.calls[3][1]["revision"] == repo["commits"][-1] == plan.commit
    assert plan.release and repo["tags"] == {"v1.0.0": plan.commit}
    for f in ("README.md", "manifest.json", "id2label.json", "eval.yaml", ".gitattributes", "images/preview.png"):
        assert f in plan.files
    assert sum(f.endswith(".parquet") for f in plan.files) == 33 and len(plan.files) == 39
    assert sorted(repo["files"]) == sorted(plan.files)


def test_publish_dry_run_makes_no_calls(release) -> None:
    api = RecordingHfApi()
    plan = publish_release(release.path, api=api, dry_run=True)
    assert [c[0] for c in api.calls] == ["repo_info"]  # read-only: the repo does not exist, so it has no tags
    assert plan.tag == "v1.0.0" and plan.repo_id == "cemnist/cemnist" and plan.hub_checked and plan.repo_exists is False


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
    calls = dict(api.calls)
    assert calls["create_repo"]["private"] is True and calls["create_tag"]["tag"] == plan.tag
    assert "not a release" in calls["upload_folder"]["commit_message"]
    assert api.repos[("dataset", "alice/cemnist-small")]["private"] is True


def test_publish_refuses_an_edited_card_or_an_incomplete_folder(release, tmp_path: Path) -> None:
    folder = tmp_path / "rel"
    shutil.copytree(release.path, folder)
    (folder / "README.md").write_text((folder / "README.md").read_text().replace("release 1.0.0", "release 2.0.0"))
    with pytest.raises(ValueError, match="README.md is not the one that its manifest gives"):
        publish_release(folder, api=RecordingHfApi())
    assert cli_main(["card", "--dir", str(folder)]) == 0
    (folder / "id2label.json").unlink()
    with pytest.raises(ValueError, match=r"not a complete release folder: \['id2label.json'\] missing"):
        publish_release(folder, api=RecordingHfApi())


def test_cli_publish_dry_run(release, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    api = RecordingHfApi()
    monkeypatch.setattr(publish, "default_api", lambda: api)
    assert cli_main(["publish", str(release.path), "--dry-run", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "would upload 39 files of release 1.0.0" in out and "to datasets/cemnist/cemnist, tag v1.0.0" in out
    assert "datasets/cemnist/cemnist does not exist yet (it would be created); tag v1.0.0 is free" in out
    assert "  images/preview.png" in out and "  eval.yaml" in out
    assert [c[0] for c in api.calls] == ["repo_info"]


# --- a publish that cannot half-publish, and fails in one line -----------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small custom build (verified in a fraction of a second, where the release takes seconds)."""
    out = tmp_path_factory.mktemp("publish") / "small"
    build_release(out, spec=CemnistSpec(train_per_task=6, validation_per_task=3, test_pool=12), progress=False)
    return out


def test_an_existing_tag_is_seen_by_the_dry_run_and_stops_the_upload(small, capsys: pytest.CaptureFixture[str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    api = RecordingHfApi()
    api.add_repo("alice/c", tags={"v1": "0123456789abcdef0123"})
    monkeypatch.setattr(publish, "default_api", lambda: api)
    assert cli_main(["publish", str(small), "--repo-id", "alice/c", "--tag", "v1", "--dry-run", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "tag v1 already exists on datasets/alice/c (commit 0123456789ab)" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="tag v1 already exists"):
        publish_release(small, api=api, repo_id="alice/c", tag="v1")
    assert [c[0] for c in api.calls] == ["repo_info", "list_repo_refs"] * 2  # nothing was created or uploaded
    assert publish_release(small, api=api, repo_id="alice/c", tag="v2").commit  # another tag is fine
    assert api.repos[("dataset", "alice/c")]["tags"]["v1"] == "0123456789abcdef0123"  # never moved


def test_stale_shards_are_deleted_in_the_same_commit(small) -> None:
    api = RecordingHfApi()
    api.add_repo("alice/cemnist", files={"data/old-config/train-00000-of-00001.parquet": b"x", "notes.txt": b"mine"})
    plan = publish_release(small, api=api, repo_id="alice/cemnist", tag="v1.0.0")
    files = api.repos[("dataset", "alice/cemnist")]["files"]
    assert "data/old-config/train-00000-of-00001.parquet" not in files and "notes.txt" in files
    assert sum(f.startswith("data/") for f in files) == 33 and plan.commit


def test_private_none_unless_asked_and_a_warning_for_a_public_repo(small, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    api = RecordingHfApi()
    publish_release(small, api=api, repo_id="alice/new", tag="t1")
    assert dict(api.calls)["create_repo"]["private"] is None
    api = RecordingHfApi()
    api.add_repo("alice/public", private=False)
    with caplog.at_level(logging.WARNING, logger="cemnist"):
        plan = publish_release(small, api=api, repo_id="alice/public", tag="t1", private=True, dry_run=True)
    assert any("already exists and is public: --private does not change an existing repo" in w for w in plan.warnings)
    assert "already exists and is public" in caplog.text
    api.add_repo("alice/secret", private=True)
    assert publish_release(small, api=api, repo_id="alice/secret", tag="t1", private=True).warnings == []


def test_an_unreachable_network_is_one_line_and_exit_1(small, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    api = RecordingHfApi(fail={"repo_info": connect_error()})
    monkeypatch.setattr(publish, "default_api", lambda: api)
    assert cli_main(["publish", str(small), "--repo-id", "alice/x", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "cannot reach the Hub (Connect" in err and "nothing was uploaded" in err
    # a dry run without the Hub still plans, and says what it could not check
    assert cli_main(["publish", str(small), "--repo-id", "alice/x", "--dry-run", "--quiet"]) == 0
    assert "would upload 39 files" in capsys.readouterr().out


def test_a_failed_upload_or_tag_says_what_is_on_the_hub(small) -> None:
    api = RecordingHfApi(fail={"upload_folder": connect_error()})
    with pytest.raises(HubError, match="uploading .* failed: cannot reach the Hub .*no commit was made"):
        publish_release(small, api=api, repo_id="alice/x", tag="t1")
    api = RecordingHfApi(fail={"create_tag": connect_error()})
    with pytest.raises(HubError, match=r"tagging commit [0-9a-f]{12} .* The files are committed \([0-9a-f]{40}\) but not "
                                       r"tagged: run the same command again"):
        publish_release(small, api=api, repo_id="alice/x", tag="t1")
    api.fail.clear()
    plan = publish_release(small, api=api, repo_id="alice/x", tag="t1")  # the rerun completes it
    assert api.repos[("dataset", "alice/x")]["tags"] == {"t1": plan.commit}


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

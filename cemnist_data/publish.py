"""``cemnist publish``: put a verified release folder (or a custom build) on the Hub as a dataset repo.

Through ``huggingface_hub``: ``create_repo`` (if needed), one ``upload_folder`` commit of the repo's
files, ``create_tag``. The published release goes to ``cemnist/cemnist`` at tag ``v<version>``; a
custom build goes only to a repo id that the caller names (their own), tagged ``v<version>-custom.<spec
hash>``, so that it cannot be mistaken for the release. Before anything is uploaded the folder is
verified by content, its card must be the one its manifest gives, and every file the card needs must
be present.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .registry import HUB_REPO_ID, display_version, get_release, shipped_manifest_for

__all__ = ["HubApi", "PublishPlan", "UPLOAD_PATTERNS", "REQUIRED_FILES", "plan_publish", "publish_release"]

UPLOAD_PATTERNS = ["README.md", "manifest.json", "id2label.json", ".gitattributes", "images/*.png", "data/*/*.parquet"]
"""``allow_patterns`` of the upload: the files of a release folder, nothing else that may lie there."""
REQUIRED_FILES = ("README.md", "manifest.json", "id2label.json", ".gitattributes", "images/preview.png")
"""Files besides the parquet shards that a complete Hub repo of CEMNIST holds."""


class HubApi(Protocol):
    """The part of ``huggingface_hub.HfApi`` that publishing uses."""

    def create_repo(self, repo_id: str, *, repo_type: str, exist_ok: bool, private: bool) -> Any: ...
    def upload_folder(self, *, repo_id: str, repo_type: str, folder_path: str, commit_message: str,
                      allow_patterns: list[str]) -> Any: ...
    def create_tag(self, repo_id: str, *, tag: str, repo_type: str, tag_message: str) -> Any: ...


@dataclass
class PublishPlan:
    """What a publication uploads and where."""

    repo_id: str
    tag: str
    folder: Path
    release: bool  # the published spec (else a custom build)
    version: str  # display version: "1.0.0" or "1.0.0+custom.<hash>"
    files: list[str] = field(default_factory=list)


def _default_tag(manifest: dict[str, Any], release: bool) -> str:
    if release:
        return get_release(manifest["version"]).tag
    return "v" + display_version(manifest).replace("+", "-")


def plan_publish(
    folder: str | os.PathLike[str], *, repo_id: str | None = None, tag: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None, progress: bool = False,
) -> PublishPlan:
    """Verify ``folder`` and list what would be uploaded where; raises ``ValueError`` for a wrong target."""
    from .card import render_readme
    from .loader import _read_manifest, verify_release

    folder = Path(folder).resolve()
    manifest, _ = _read_manifest(folder)
    shipped = shipped_manifest_for(manifest)
    release = shipped is not None
    verify_release(folder, expected=shipped, record=False, cache_dir=cache_dir, progress=progress)
    if repo_id is None:
        if not release:
            raise ValueError(
                f"{folder} is a custom build ({display_version(manifest)}), not the CEMNIST release: "
                "publish it under your own repo id with --repo-id OWNER/NAME"
            )
        repo_id = HUB_REPO_ID
    if not release and repo_id == HUB_REPO_ID:
        raise ValueError(f"{HUB_REPO_ID} holds the CEMNIST releases only; {folder} is a custom build "
                         f"({display_version(manifest)}): publish it under your own repo id")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo id must be 'owner/name', got {repo_id!r}")
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if missing:
        raise ValueError(f"{folder} is not a complete release folder: {missing} missing. Rebuild it with "
                         f"`cemnist build --out {folder} --overwrite`")
    card = (folder / "README.md").read_text(encoding="utf-8")
    if card != render_readme(manifest):
        raise ValueError(f"{folder / 'README.md'} is not the card that its manifest gives (edited, or written by another "
                         f"version of cemnist). Rewrite it with `cemnist card --dir {folder}`")
    from huggingface_hub.utils import filter_repo_objects

    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    files = list(filter_repo_objects(names, allow_patterns=UPLOAD_PATTERNS))
    return PublishPlan(repo_id=repo_id, tag=tag or _default_tag(manifest, release), folder=folder, release=release,
                       version=display_version(manifest), files=files)


def publish_release(
    folder: str | os.PathLike[str], *, api: HubApi | None = None, repo_id: str | None = None, tag: str | None = None,
    private: bool = False, dry_run: bool = False, cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> PublishPlan:
    """Create the dataset repo (if needed), upload the folder in one commit and tag it (``dry_run``: plan only)."""
    p = plan_publish(folder, repo_id=repo_id, tag=tag, cache_dir=cache_dir, progress=progress)
    if dry_run:
        return p
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    what = f"CEMNIST release {p.version}" if p.release else f"CEMNIST custom build {p.version} (not a release)"
    api.create_repo(p.repo_id, repo_type="dataset", exist_ok=True, private=private)
    api.upload_folder(repo_id=p.repo_id, repo_type="dataset", folder_path=str(p.folder),
                      commit_message=what, allow_patterns=list(UPLOAD_PATTERNS))
    api.create_tag(p.repo_id, tag=p.tag, repo_type="dataset", tag_message=what)
    return p

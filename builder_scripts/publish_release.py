#!/usr/bin/env python
"""Publish a verified release folder to the Hugging Face Hub as a dataset repo, tagged v<version>.

    python builder_scripts/publish_release.py _release/v1.0.0 --dry-run     # show what would happen
    HF_TOKEN=... python builder_scripts/publish_release.py _release/v1.0.0  # create_repo, upload_folder, create_tag

The folder is verified against the manifest shipped in the package before anything is uploaded.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cemnist_data.loader import compare_manifests, shipped_manifest_for, verify_release
from cemnist_data.registry import HUB_REPO_ID, get_release


class HubApi(Protocol):
    """The part of ``huggingface_hub.HfApi`` that publishing uses."""

    def create_repo(self, repo_id: str, *, repo_type: str, exist_ok: bool, private: bool) -> Any: ...
    def upload_folder(self, *, repo_id: str, repo_type: str, folder_path: str, commit_message: str,
                      allow_patterns: list[str]) -> Any: ...
    def create_tag(self, repo_id: str, *, tag: str, repo_type: str, tag_message: str) -> Any: ...


@dataclass
class PublishPlan:
    repo_id: str
    tag: str
    folder: Path
    files: list[str] = field(default_factory=list)


UPLOAD_PATTERNS = ["README.md", "manifest.json", "data/**/*.parquet", "docs/img/*.png"]
REPO = Path(__file__).resolve().parents[1]
CARD_IMAGES = ["docs/img/preview_strip.png"]  # pictures the card links to, copied from this repo


def plan(folder: Path, *, repo_id: str = HUB_REPO_ID) -> PublishPlan:
    """Verify ``folder`` against the shipped manifest and list what would be uploaded."""
    folder = Path(folder)
    manifest = verify_release(folder, record=False)
    version = manifest["version"]
    shipped = shipped_manifest_for(manifest)
    if shipped is None:
        raise ValueError(f"{folder} was built from a custom spec, not release {version}; only releases are published")
    compare_manifests(manifest, shipped, folder)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return PublishPlan(repo_id=repo_id, tag=get_release(version).tag, folder=folder, files=files)


def publish(folder: Path, *, api: HubApi, repo_id: str = HUB_REPO_ID, dry_run: bool = False,
            private: bool = False) -> PublishPlan:
    """Create the dataset repo (if needed), upload the folder in one commit and tag it."""
    p = plan(folder, repo_id=repo_id)
    if dry_run:
        return p
    for rel in CARD_IMAGES:
        src, dst = REPO / rel, Path(folder) / rel
        if src.is_file() and not dst.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            p.files.append(rel)
    api.create_repo(p.repo_id, repo_type="dataset", exist_ok=True, private=private)
    api.upload_folder(repo_id=p.repo_id, repo_type="dataset", folder_path=str(p.folder),
                      commit_message=f"CEMNIST release {p.tag}", allow_patterns=UPLOAD_PATTERNS)
    api.create_tag(p.repo_id, tag=p.tag, repo_type="dataset", tag_message=f"CEMNIST release {p.tag}")
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--repo-id", default=HUB_REPO_ID)
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--private", action="store_true")
    args = ap.parse_args(argv)
    api = None
    if not args.dry_run:
        from huggingface_hub import HfApi

        api = HfApi()
    p = publish(args.folder, api=api, repo_id=args.repo_id, dry_run=args.dry_run, private=args.private)
    verb = "would upload" if args.dry_run else "uploaded"
    print(f"{verb} {len(p.files)} files from {p.folder} to datasets/{p.repo_id}, tag {p.tag}")
    for f in p.files:
        print(f"  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

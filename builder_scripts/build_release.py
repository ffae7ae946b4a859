#!/usr/bin/env python
"""Regenerate the release shards of CEMNIST (all configs, parquet, card YAML, manifest).

    python builder_scripts/build_release.py --out _release/v1.0.0            # build + compare to shipped manifest
    python builder_scripts/build_release.py --out _release/v1.0.0 --update-manifest
        # also (re)write cemnist_data/releases/v<version>.json, DATASET_CARD.md and its preview picture
        # docs/img/release_preview.png from this build. The content view of a published manifest (spec,
        # tasks, row counts, decoded-content hashes) must never change: for a published version that is
        # checked first, so only the recorded file bytes/SHA-256s can be refreshed (e.g. a new encoding).

The content hashes are compared with the manifest shipped in the package; a difference is an error
(exit 1) unless --update-manifest is given for a version that is not yet published.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cemnist_data.card import render_readme
from cemnist_data.loader import compare_manifests
from cemnist_data.registry import RELEASES, get_release, load_manifest
from cemnist_data.fileio import atomic_write_bytes, atomic_write_text
from cemnist_data.preview import PREVIEW_PATH
from cemnist_data.release import build_release
from cemnist_data.spec import CemnistSpec

REPO = Path(__file__).resolve().parents[1]
CARD_PREVIEW = "docs/img/release_preview.png"  # the repository copy of the card's images/preview.png


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--update-manifest", action="store_true")
    p.add_argument("--allow-published", action="store_true",
                   help="with --update-manifest, also overwrite the manifest of an already published version")
    args = p.parse_args(argv)

    spec = CemnistSpec(version=args.version)
    t0 = time.perf_counter()
    manifest = build_release(args.out, spec=spec, workers=args.workers, overwrite=True)
    print(f"built {args.out} in {time.perf_counter() - t0:.1f} s")

    if args.update_manifest:
        if args.version in RELEASES and not args.allow_published:
            try:
                compare_manifests(manifest, load_manifest(args.version), args.out)
            except FileNotFoundError:
                pass
        target = REPO / "cemnist_data" / "releases" / get_release(args.version).manifest_file
        atomic_write_text(target, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        atomic_write_bytes(REPO / CARD_PREVIEW, (args.out / PREVIEW_PATH).read_bytes())
        atomic_write_text(REPO / "DATASET_CARD.md", render_readme(manifest, preview=CARD_PREVIEW))
        print(f"wrote {target.relative_to(REPO)}, {CARD_PREVIEW} and DATASET_CARD.md")
        return 0
    compare_manifests(manifest, load_manifest(args.version), args.out)
    print(f"content identical to the shipped {args.version} manifest")
    return 0


if __name__ == "__main__":
    sys.exit(main())

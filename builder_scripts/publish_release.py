#!/usr/bin/env python
"""Publish a verified release folder to the Hugging Face Hub (a thin wrapper of `cemnist publish`).

    python builder_scripts/publish_release.py _release/v1.0.0 --dry-run     # show what would happen
    HF_TOKEN=... python builder_scripts/publish_release.py _release/v1.0.0  # create_repo, upload_folder, create_tag

Same options as `cemnist publish DIR [--repo-id ID] [--tag TAG] [--private] [--dry-run]`.
"""

from __future__ import annotations

import sys

from cemnist_data.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    return cli_main(["publish", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

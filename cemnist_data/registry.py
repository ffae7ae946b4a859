"""The single source of truth: releases, Hub location, licence and the pinned MNIST checksums."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = [
    "HUB_REPO_ID",
    "LICENSE",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "RELEASES",
    "LATEST_VERSION",
    "MnistFile",
    "Release",
    "get_release",
    "load_manifest",
    "shipped_manifest_for",
    "display_version",
    "DESCRIPTION",
    "HOMEPAGE",
    "CITATION",
    "MNIST_HUB_ID",
]

HUB_REPO_ID = "cemnist/cemnist"
"""Hugging Face dataset repository of the published releases (tag ``v<version>``)."""

HOMEPAGE = f"https://huggingface.co/datasets/{HUB_REPO_ID}"
"""The dataset's page on the Hub (``info.homepage``)."""
MNIST_HUB_ID = "ylecun/mnist"
"""The MNIST dataset on the Hub (the card's ``source_datasets``)."""

DESCRIPTION = (
    "CEMNIST (Continual Extended MNIST) is a deterministic toy benchmark for continual "
    "(class-incremental) semantic segmentation: 60x60 images holding two to four real MNIST digits, "
    "with a per-pixel label map (0 background, d+1 digit d); the ten digits are learned over several "
    "tasks, and while a task is learned, old and future digits are labelled background."
)
"""One-paragraph description (``info.description`` of every loaded split)."""

CITATION = r"""@misc{cemnist2026,
  title        = {{CEMNIST}: Continual Extended {MNIST}, a Toy Benchmark for Continual Semantic Segmentation},
  author       = {{The CEMNIST authors}},
  year         = {2026},
  howpublished = {Hugging Face dataset \texttt{cemnist/cemnist}},
  url          = {https://huggingface.co/datasets/cemnist/cemnist}
}"""
"""BibTeX of the dataset (``info.citation``); the card adds the works it builds on."""

LICENSE = "cc-by-sa-3.0"
LICENSE_CREDIT = (
    "Derived from the MNIST database of handwritten digits by Yann LeCun, Corinna Cortes and "
    "Christopher J. C. Burges, distributed under CC BY-SA 3.0."
)


@dataclass(frozen=True)
class MnistFile:
    """One IDX file of MNIST, pinned by the SHA-256 of its decompressed bytes."""

    name: str  # decompressed file name, e.g. "train-images-idx3-ubyte"
    sha256: str  # of the decompressed bytes
    items: int
    kind: str  # "images" or "labels"
    split: str  # "train" or "test"

    @property
    def gz_name(self) -> str:
        return self.name + ".gz"


MNIST_FILES: dict[str, MnistFile] = {
    f.name: f
    for f in (
        MnistFile(
            "train-images-idx3-ubyte",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            60000,
            "images",
            "train",
        ),
        MnistFile(
            "train-labels-idx1-ubyte",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            60000,
            "labels",
            "train",
        ),
        MnistFile(
            "t10k-images-idx3-ubyte",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            10000,
            "images",
            "test",
        ),
        MnistFile(
            "t10k-labels-idx1-ubyte",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            10000,
            "labels",
            "test",
        ),
    )
}

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
"""Mirrors for ``cemnist_data.mnist.download_mnist``; every download is checked against the pins."""


@dataclass(frozen=True)
class Release:
    """A published release: its version, Hub tag and the manifest shipped in this package."""

    version: str
    tag: str
    manifest_file: str
    notes: str


RELEASES: dict[str, Release] = {
    "1.0.0": Release(
        version="1.0.0",
        tag="v1.0.0",
        manifest_file="v1.0.0.json",
        notes="First release: setting 2-2, overlap and disjoint modes, joint config.",
    ),
}
LATEST_VERSION = "1.0.0"


def get_release(version: str) -> Release:
    """Look up a release by version, with a precise error for unknown versions."""
    try:
        return RELEASES[version]
    except KeyError:
        raise ValueError(f"unknown CEMNIST release {version!r}; known releases: {sorted(RELEASES)}") from None


def load_manifest(version: str) -> dict[str, Any]:
    """The manifest shipped inside the package for ``version`` (sizes, spec, content hashes)."""
    release = get_release(version)
    path = resources.files("cemnist_data").joinpath("releases", release.manifest_file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"the package has no manifest for release {version} ({release.manifest_file}); "
            "reinstall cemnist, or regenerate it with `python builder_scripts/build_release.py --update-manifest`"
        ) from None
    return json.loads(text)


def shipped_manifest_for(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The shipped manifest a folder must match: same published version and the same spec; else None."""
    if manifest.get("version") not in RELEASES:
        return None
    shipped = load_manifest(manifest["version"])
    return shipped if manifest.get("spec") == shipped["spec"] else None


def display_version(manifest: dict[str, Any]) -> str:
    """The version a manifest is shown under: the release version for the published spec, else
    ``<version>+custom.<8 hex digits of the spec>``, which cannot be mistaken for a release."""
    if shipped_manifest_for(manifest) is not None:
        return str(manifest["version"])
    import hashlib

    spec = {k: v for k, v in manifest.get("spec", {}).items() if k != "version"}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:8]
    return f"{manifest.get('version')}+custom.{digest}"

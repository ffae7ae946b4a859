"""The MNIST source: IDX files shipped with the package, verified by the pinned SHA-256 sums."""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .fileio import atomic_write_bytes
from .registry import MNIST_FILES, MNIST_MIRRORS, MnistFile

__all__ = ["MnistData", "load_mnist", "download_mnist", "MnistIntegrityError"]


class MnistIntegrityError(RuntimeError):
    """An MNIST file is missing, truncated or does not match its pinned checksum."""


@dataclass(frozen=True)
class MnistData:
    """MNIST as arrays: ``images[split]`` is uint8 ``[N, 28, 28]``, ``labels[split]`` uint8 ``[N]``."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    def images(self, split: str) -> np.ndarray:
        return self.train_images if split == "train" else self.test_images

    def labels(self, split: str) -> np.ndarray:
        return self.train_labels if split == "train" else self.test_labels


def _read_file_bytes(path: Path) -> bytes:
    """Read an IDX file, decompressing it when it is gzip."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise MnistIntegrityError(
                f"{path} is not a valid gzip file ({exc}); it is probably truncated. "
                "Reinstall cemnist or re-download MNIST (`cemnist download-mnist --dir DIR`)."
            ) from exc
    return raw


def _find(spec: MnistFile, mnist_dir: Path | None) -> Path | resources.abc.Traversable:
    if mnist_dir is None:
        base = resources.files("cemnist_data").joinpath("mnist_data")
        return base.joinpath(spec.gz_name)
    for name in (spec.gz_name, spec.name):
        p = Path(mnist_dir) / name
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"MNIST file {spec.name}[.gz] not found in {mnist_dir}. Point --mnist-dir at a folder with the four "
        "official IDX files, or omit it to use the copy shipped inside the package."
    )


def _parse_idx(data: bytes, spec: MnistFile) -> np.ndarray:
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def _load_one(spec: MnistFile, mnist_dir: Path | None) -> np.ndarray:
    src = _find(spec, mnist_dir)
    if isinstance(src, Path):
        data = _read_file_bytes(src)
    else:
        with resources.as_file(src) as p:
            data = _read_file_bytes(Path(p))
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise MnistIntegrityError(
            f"MNIST file {spec.name} from {src} has SHA-256 {digest} of its decompressed bytes, expected "
            f"{spec.sha256} ({len(data)} bytes read). The file is corrupted or not the official MNIST. "
            "Fix: reinstall cemnist (`pip install --force-reinstall cemnist`), or fetch verified copies with "
            "`cemnist download-mnist --dir DIR` and pass `--mnist-dir DIR`."
        )
    return _parse_idx(data, spec)


@lru_cache(maxsize=4)
def _load_cached(mnist_dir: str | None) -> MnistData:
    d = Path(mnist_dir) if mnist_dir is not None else None
    arrays = {name: _load_one(spec, d) for name, spec in MNIST_FILES.items()}
    for a in arrays.values():
        a.setflags(write=False)
    return MnistData(
        train_images=arrays["train-images-idx3-ubyte"],
        train_labels=arrays["train-labels-idx1-ubyte"],
        test_images=arrays["t10k-images-idx3-ubyte"],
        test_labels=arrays["t10k-labels-idx1-ubyte"],
    )


def load_mnist(*, mnist_dir: str | os.PathLike[str] | None = None) -> MnistData:
    """Load the four MNIST IDX files and verify each against its pinned SHA-256.

    By default the copy shipped inside the package is used; ``mnist_dir`` selects another folder
    holding the files (``.gz`` or uncompressed). Results are cached in memory per folder.
    """
    return _load_cached(None if mnist_dir is None else str(Path(mnist_dir).resolve()))


def download_mnist(
    dest: str | os.PathLike[str], *, mirrors: tuple[str, ...] = MNIST_MIRRORS, timeout: float = 30.0
) -> Path:
    """Download the four MNIST files into ``dest``, trying each mirror, verifying every file.

    A file that already verifies is kept. Each download is written to a temporary file and moved into
    place only after its checksum matches. Raises ``MnistIntegrityError`` naming every failed mirror.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for spec in MNIST_FILES.values():
        target = dest / spec.gz_name
        if target.is_file():
            try:
                _load_one(spec, dest)
                continue
            except MnistIntegrityError:
                target.unlink()
        errors: list[str] = []
        for mirror in mirrors:
            url = mirror + spec.gz_name
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    payload = resp.read()
            except (urllib.error.URLError, OSError) as exc:
                errors.append(f"{url}: {exc}")
                continue
            try:
                digest = hashlib.sha256(gzip.decompress(payload)).hexdigest()
            except (OSError, EOFError) as exc:
                errors.append(f"{url}: not a valid gzip file ({exc})")
                continue
            if digest != spec.sha256:
                errors.append(f"{url}: SHA-256 {digest} != pinned {spec.sha256}")
                continue
            atomic_write_bytes(target, payload)
            break
        else:
            raise MnistIntegrityError(
                f"could not download a verified copy of {spec.gz_name}. Tried:\n  "
                + "\n  ".join(errors)
                + "\nThe package already ships MNIST; use it by omitting --mnist-dir, or copy the official "
                "IDX files into the folder by hand."
            )
    return dest

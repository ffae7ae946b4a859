"""Faults: corrupted caches and MNIST files, interrupted and concurrent builds, no unpickling."""

from __future__ import annotations

import gzip
import multiprocessing as mp
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from cemnist_data import CemnistIntegrityError, MnistIntegrityError, load_dataset, load_mnist
from cemnist_data.loader import resolve_release, verify_release
from cemnist_data.release import _ReleaseBuilder, build_release, split_path
from cemnist_data.spec import CemnistSpec

SMALL = CemnistSpec(train_per_task=40, validation_per_task=10, test_pool=60)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def cache_copy(release, tmp_path: Path) -> Path:
    """A private copy of the verified v1 cache, safe to damage."""
    root = tmp_path / "cache"
    shutil.copytree(release.path, root / "releases" / "1.0.0")
    return root


def test_corrupted_cache_file_is_detected_with_the_fix(cache_copy: Path) -> None:
    load_dataset("cemnist", task=2, cache_dir=cache_copy)  # verified once: its files' SHA-256s are recorded
    f = cache_copy / "releases" / "1.0.0" / split_path("overlap-task2", "train")
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CemnistIntegrityError, match=r"corrupted or truncated[\s\S]*Fix: delete"):
        load_dataset("cemnist", task=2, cache_dir=cache_copy)
    # other configs stay loadable
    assert load_dataset("cemnist", task=1, split="validation", cache_dir=cache_copy).num_rows == 500


def test_truncated_cache_file_is_detected(cache_copy: Path) -> None:
    f = cache_copy / "releases" / "1.0.0" / split_path("joint", "test")
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(CemnistIntegrityError, match="joint/test"):
        load_dataset("cemnist", config="joint", split="test", cache_dir=cache_copy)


def test_unverified_folder_with_wrong_content_fails_verification(release, tmp_path: Path) -> None:
    folder = tmp_path / "rel"
    shutil.copytree(release.path, folder)  # a new path: nothing recorded as verified for it yet
    # swap two splits: each file is a valid parquet, but not the content the manifest promises
    a, b = folder / split_path("overlap-task0", "validation"), folder / split_path("overlap-task1", "validation")
    tmp = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(tmp)
    with pytest.raises(CemnistIntegrityError, match=r"overlap-task0/validation[\s\S]*manifest says"):
        verify_release(folder, configs=["overlap-task0"])


def test_manifest_mismatch_with_shipped_release(release, tmp_path: Path) -> None:
    folder = tmp_path / "rel"
    shutil.copytree(release.path, folder)
    text = (folder / "manifest.json").read_text()
    h = release.manifest["configs"]["overlap-task3"]["splits"]["test"]["content_sha256"]
    (folder / "manifest.json").write_text(text.replace(h, "0" * 64))
    with pytest.raises(CemnistIntegrityError, match="does not match the manifest shipped"):
        resolve_release(str(folder), configs=[])


def test_corrupted_and_truncated_mnist(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[2] / "cemnist_data" / "mnist_data"
    bad = tmp_path / "mnist"
    shutil.copytree(src, bad)
    f = bad / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(f.read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    f.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(MnistIntegrityError, match=r"t10k-labels-idx1-ubyte[\s\S]*expected ff7bcfd4[\s\S]*--mnist-dir"):
        load_mnist(mnist_dir=bad)
    f.write_bytes((src / "t10k-labels-idx1-ubyte.gz").read_bytes()[:500])
    with pytest.raises(MnistIntegrityError, match="truncated"):
        load_mnist(mnist_dir=bad)


def test_uncompressed_mnist_dir_verifies(tmp_path: Path) -> None:
    src = REPO / "cemnist_data" / "mnist_data"
    for gz in src.glob("*.gz"):
        (tmp_path / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    m = load_mnist(mnist_dir=tmp_path)
    assert m.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_interrupted_build_leaves_nothing_a_load_would_accept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self, bar):  # noqa: ANN001
        raise KeyboardInterrupt

    monkeypatch.setattr(_ReleaseBuilder, "build_test_splits", boom)
    out = tmp_path / "rel"
    with pytest.raises(KeyboardInterrupt):
        build_release(out, spec=SMALL, progress=False)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
    with pytest.raises(FileNotFoundError, match="no such folder"):  # NoSuchFolderError: `cemnist verify` exits 2
        verify_release(out)


def _build_small(out: str) -> str:
    build_release(out, spec=SMALL, progress=False, overwrite=True)
    return out


def test_concurrent_builds_do_not_corrupt(tmp_path: Path) -> None:
    out = str(tmp_path / "rel")
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(_build_small, [out, out])
    manifest = verify_release(out)
    assert manifest["configs"]["joint"]["splits"]["train"]["num_rows"] == 5 * 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rel"]  # the lock file is deleted when the build ends


def test_existing_folder_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "rel"
    build_release(out, spec=SMALL, progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        build_release(out, spec=SMALL, progress=False)


def test_custom_spec_release_loads_and_verifies(tmp_path: Path) -> None:
    spec = CemnistSpec(setting="5-1", class_order=(9, 8, 7, 6, 5, 4, 3, 2, 1, 0), train_per_task=30,
                       validation_per_task=10, test_pool=50, seed=3)
    out = tmp_path / "custom"
    manifest = build_release(out, spec=spec, progress=False)
    assert manifest["tasks"][0] == [9, 8, 7, 6, 5] and len(manifest["configs"]) == 2 * 6 + 1
    ds = load_dataset(str(out), task=5, split="train", mode="disjoint")
    assert ds.num_rows == 30
    masks = {int(v) for row in ds["mask"] for v in np.unique(np.asarray(row))}
    assert masks <= {0, 1}  # task 5 learns digit 0 -> label 1
    with pytest.raises(ValueError, match=r"task must be an integer in \[0, 5\]"):
        load_dataset(str(out), task=6)


def test_product_code_never_unpickles() -> None:
    pattern = re.compile(r"\bimport pickle\b|\bpickle\.load|torch\.load\(|allow_pickle=True|np\.load\(")
    offenders = []
    for folder in ("cemnist_data", "cemnist_baselines", "builder_scripts"):
        for py in (REPO / folder).rglob("*.py"):
            for i, line in enumerate(py.read_text().splitlines(), 1):
                if pattern.search(line) and "weights_only=True" not in line:
                    offenders.append(f"{py.relative_to(REPO)}:{i}: {line.strip()}")
    assert offenders == []


def _resolve_in(cache: str) -> str:
    from cemnist_data.loader import resolve_release as resolve

    return resolve("cemnist", cache_dir=cache, progress=False).manifest["configs"]["joint"]["splits"]["test"]["content_sha256"]


def test_two_loads_into_one_empty_cache_build_once(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        digests = pool.map(_resolve_in, [str(tmp_path)] * 2)
    assert digests[0] == digests[1]
    releases = tmp_path / "releases"
    assert sorted(p.name for p in releases.iterdir()) == ["1.0.0"]  # no partial folders, no lock file left
    verify_release(releases / "1.0.0", configs=["joint"])


@pytest.mark.parametrize("name, expected", [("EACCES", True), ("EPERM", True), ("EROFS", True),
                                            ("ENOSPC", False), ("ENOENT", False), ("EIO", False)])
def test_one_rule_says_what_read_only_means(name: str, expected: bool) -> None:
    """Lock, build and work-folder code share one test for "cannot write here"; a full disk or a missing
    folder is not "read-only" and must not be turned into a read-only fallback or message."""
    import errno
    import os

    from cemnist_data.workdirs import is_not_writable

    code = getattr(errno, name)
    assert is_not_writable(OSError(code, os.strerror(code))) is expected

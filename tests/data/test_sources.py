"""The download and Hub paths, exercised offline.

* MNIST mirrors: a real HTTP server on 127.0.0.1 serves one corrupted and one good mirror.
* Hub: ``_download_from_hub`` is replaced by a recording fake that copies a local folder (honouring the
  ``allow_patterns`` it is given), so the resolution order and the verification that follows a download
  are tested without network.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from cemnist_data import loader
from cemnist_data import release as release_module
from cemnist_data.loader import CemnistIntegrityError, resolve_release
from cemnist_data.mnist import MnistIntegrityError, download_mnist, load_mnist

REPO = Path(__file__).resolve().parents[2]


def _copy_matching(src: Path, dst: Path, allow_patterns: list[str]) -> Path:
    """Copy the files of ``src`` that match ``allow_patterns`` (huggingface_hub's own matcher) to ``dst``."""
    from huggingface_hub.utils import filter_repo_objects

    names = sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file())
    for name in filter_repo_objects(names, allow_patterns=allow_patterns):
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / name, dst / name)
    return dst


@pytest.fixture()
def mirrors(tmp_path: Path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    shutil.copytree(REPO / "cemnist_data" / "mnist_data", good)
    shutil.copytree(good, bad)
    f = bad / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(f.read_bytes()))
    raw[-1] ^= 1
    f.write_bytes(gzip.compress(bytes(raw)))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield f"{base}/bad/", f"{base}/good/", f"{base}/missing/"
    server.shutdown()


def test_download_skips_a_corrupted_mirror(mirrors, tmp_path: Path) -> None:
    bad, good, missing = mirrors
    dest = download_mnist(tmp_path / "dl", mirrors=(missing, bad, good), timeout=5)
    assert load_mnist(mnist_dir=dest).test_labels[:3].tolist() == [7, 2, 1]


def test_download_fails_when_no_mirror_verifies(mirrors, tmp_path: Path) -> None:
    bad, _, missing = mirrors
    with pytest.raises(MnistIntegrityError, match=r"train-labels-idx1-ubyte.gz[\s\S]*SHA-256 [0-9a-f]+ != pinned 65a50cbb"):
        download_mnist(tmp_path / "dl", mirrors=(missing, bad), timeout=5)
    assert not list((tmp_path / "dl").glob(".*.tmp"))


def test_hub_download_is_verified_and_cached(release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_download(repo_id: str, revision: str, dest: Path, *, allow_patterns: list[str]) -> Path:  # recording fake Hub
        calls.append((repo_id, revision))
        return _copy_matching(release.path, dest.parent / f".{dest.name}.download-test", allow_patterns)

    monkeypatch.setattr(loader, "_download_from_hub", fake_download)
    monkeypatch.setattr(loader, "_hub_offline", lambda: False)
    rel = resolve_release("cemnist", cache_dir=tmp_path, progress=False)
    assert calls == [("cemnist/cemnist", "v1.0.0")]
    assert rel.path == tmp_path / "releases" / "1.0.0" and loader._record_path(rel.path, tmp_path).is_file()
    assert not list(rel.path.glob(".cemnist*"))  # the verification record lives in the cache, not in the folder
    resolve_release("cemnist", cache_dir=tmp_path, configs=[])  # second time: from the cache
    assert len(calls) == 1


def test_tampered_hub_download_is_an_error_not_a_fallback(release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_download(repo_id: str, revision: str, dest: Path, *, allow_patterns: list[str]) -> Path:  # serves damaged data
        tmp = _copy_matching(release.path, dest.parent / f".{dest.name}.download-test", allow_patterns)
        a, b = tmp / "data/joint/validation-00000-of-00001.parquet", tmp / "data/joint/test-00000-of-00001.parquet"
        a.write_bytes(b.read_bytes())
        return tmp

    def no_build(*a, **k):  # regeneration must not be reached
        raise AssertionError("fell back to regeneration")

    monkeypatch.setattr(loader, "_download_from_hub", fake_download)
    monkeypatch.setattr(loader, "_hub_offline", lambda: False)
    monkeypatch.setattr(release_module, "build_release_locked", no_build)
    with pytest.raises(CemnistIntegrityError, match="joint/validation"):
        resolve_release("cemnist", cache_dir=tmp_path, progress=False)
    assert not (tmp_path / "releases" / "1.0.0").exists()
    assert [p.name for p in (tmp_path / "releases").iterdir() if not p.name.endswith(".lock")] == []


def test_unreachable_hub_falls_through_to_regeneration_only_in_auto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(repo_id: str, revision: str, dest: Path, *, allow_patterns: list[str]) -> Path:
        raise OSError("network unreachable")

    monkeypatch.setattr(loader, "_download_from_hub", unreachable)
    monkeypatch.setattr(loader, "_hub_offline", lambda: False)
    with pytest.raises(OSError, match="unreachable"):
        resolve_release("cemnist", cache_dir=tmp_path, source="hub")
    with pytest.raises(FileNotFoundError, match="no cached release"):
        resolve_release("cemnist", cache_dir=tmp_path, source="cache")

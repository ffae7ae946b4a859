"""Loading: offline load_dataset("cemnist"), plain datasets.load_dataset on the folder, torch tensors."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from cemnist_data import load_dataset, load_tensors, release_info, to_numpy, to_tensors


def test_hub_is_offline_in_tests() -> None:
    from huggingface_hub import constants

    assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE


def test_load_task_datasetdict(release) -> None:
    dd = load_dataset("cemnist", task=2)
    assert isinstance(dd, datasets.DatasetDict) and list(dd) == ["train", "validation", "test"]
    assert (dd["train"].num_rows, dd["validation"].num_rows) == (2500, 500)
    assert dd["test"].num_rows == release.manifest["configs"]["overlap-task2"]["splits"]["test"]["num_rows"]
    row = dd["train"][0]
    assert row["image"].mode == "L" and row["image"].size == (60, 60)
    assert row["task"] == 2 and row["mnist_split"] == "train"
    assert len(row["digits"]) == len(row["mnist_index"]) == len(row["top"]) == len(row["left"])
    assert dd["train"].features["digits"].feature.names == [str(d) for d in range(10)]


def test_load_split_mode_and_joint(release) -> None:
    ds = load_dataset("cemnist", task=2, split="train", mode="disjoint")
    assert isinstance(ds, datasets.Dataset) and ds[0]["uid"].startswith("disjoint/train/task2/")
    joint = load_dataset("cemnist", config="joint", split="validation")
    assert joint.num_rows == 2500 and set(joint.unique("task")) == {-1}


def test_plain_datasets_load_dataset_on_the_folder(release) -> None:
    plain = datasets.load_dataset(str(release.path), "overlap-task1")
    ours = load_dataset("cemnist", task=1)
    for split in ("train", "test"):
        assert plain[split].num_rows == ours[split].num_rows
        a = to_numpy(plain[split], columns=("image", "mask", "digits"))
        b = to_numpy(ours[split], columns=("image", "mask", "digits"))
        for x, y in zip(a, b):
            assert (x == y).all()
    # the default config of the card is overlap-task0
    assert datasets.load_dataset(str(release.path), split="validation")[0]["uid"].startswith("overlap/validation/task0/")


def test_to_tensors_matches_pillow_decoding(release) -> None:
    ds = load_dataset("cemnist", task=3, split="test")
    images, masks, full = to_tensors(ds, columns=("image", "mask", "full_mask"))
    assert images.dtype == torch.uint8 and images.shape == (ds.num_rows, 60, 60)
    for i in (0, 17, ds.num_rows - 1):
        raw = ds.with_format("arrow")[i : i + 1].column("mask")[0]["bytes"].as_py()
        assert (np.asarray(Image.open(io.BytesIO(raw))) == masks[i].numpy()).all()
        assert (np.asarray(ds[i]["image"]) == images[i].numpy()).all()
    # order after shuffle/select is kept
    sub = ds.shuffle(seed=0).select(range(10))
    s_img, = to_tensors(sub, columns=("image",))
    for j in range(10):
        assert (np.asarray(sub[j]["image"]) == s_img[j].numpy()).all()


def test_load_tensors(release) -> None:
    images, masks = load_tensors("cemnist", task=0, split="train")
    assert images.shape == masks.shape == (2500, 60, 60)
    assert set(torch.unique(masks).tolist()) == {0, 1, 2}


def test_release_info_without_data() -> None:
    info = release_info()
    assert info["version"] == "1.0.0" and info["tasks"][4] == [8, 9]
    assert info["configs"]["joint"]["train"]["num_rows"] == 12500


def test_local_folder_path(release) -> None:
    ds = load_dataset(str(release.path), task=4, split="validation")
    assert ds.num_rows == 500


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": 5}, r"task must be an integer in \[0, 4\]"),
        ({"task": -1}, r"task must be an integer in \[0, 4\]"),
        ({"task": "2"}, "task must be an integer"),
        ({"task": 1, "mode": "overlapping"}, "unknown mode 'overlapping'"),
        ({"task": 1, "split": "dev"}, "unknown split 'dev'"),
        ({"config": "overlap-task9"}, "not in this release"),
        ({"config": "nope"}, "unknown config"),
        ({"task": 1, "config": "joint"}, "task=1 contradicts config 'joint'"),
        ({"mode": "disjoint"}, "mode='disjoint' needs task="),
        ({"task": 1, "split": "train[:10%"}, "unknown split"),
        ({"task": 1, "split": "train+dev"}, "unknown split 'dev'"),
        ({"task": 1, "revision": "dev"}, "not a CEMNIST release tag"),
        ({"task": 1, "version": "1.0.0", "revision": "v9.9.9"}, "contradicts"),
        ({"name": "overlap-task1", "config": "overlap-task2"}, "name='overlap-task1' contradicts config='overlap-task2'"),
        ({"task": 1, "version": "9.9.9"}, "unknown CEMNIST release"),
        ({"task": 1, "source": "ftp"}, "unknown source"),
    ],
)
def test_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_dataset("cemnist", **kwargs)


def test_tensors_need_a_split() -> None:
    with pytest.raises(ValueError, match="one split"):
        load_tensors("cemnist", task=0, split=None)  # type: ignore[arg-type]


def test_to_numpy_rejects_datasetdict(release) -> None:
    with pytest.raises(ValueError, match="one split"):
        to_numpy(load_dataset("cemnist", task=0))  # type: ignore[arg-type]


# --- load_dataset behaves like datasets.load_dataset -------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"config": "overlap-task2", "mode": "disjoint"}, r"mode='disjoint' contradicts config 'overlap-task2'"),
        ({"config": "disjoint-task2", "mode": "overlap"}, r"mode='overlap' contradicts config 'disjoint-task2'"),
        ({"config": "joint", "mode": "disjoint"}, r"mode='disjoint' contradicts config 'joint'"),
        ({"name": "overlap-task2", "task": 3}, r"task=3 contradicts config 'overlap-task2'"),
    ],
)
def test_contradicting_arguments_are_an_error_not_silent_wrong_data(kwargs: dict, match: str) -> None:
    """Before the fix, config= won over mode= and overlap rows came back for mode="disjoint"."""
    with pytest.raises(ValueError, match=match):
        load_dataset("cemnist", **kwargs)
    with pytest.raises(ValueError, match=match):
        load_tensors("cemnist", split="train", **{("config" if k == "name" else k): v for k, v in kwargs.items()})


def test_agreeing_arguments_and_datasets_style_config_names(release) -> None:
    a = load_dataset("cemnist", "disjoint-task2", split="validation")
    b = load_dataset("cemnist", name="disjoint-task2", split="validation", mode="disjoint", task=2)
    c = load_dataset("cemnist", config="disjoint-task2", split="validation")
    assert a["uid"] == b["uid"] == c["uid"] and a[0]["uid"].startswith("disjoint/validation/task2/")
    joint = load_dataset("cemnist", "joint", split="validation", mode="overlap")  # joint = union of the overlap tasks
    assert joint[0]["uid"].startswith("overlap/validation/task0/")
    default = load_dataset("cemnist", split="validation")  # no config: the card's default, as datasets does
    assert default.info.config_name == "overlap-task0"


def test_split_slicing_lists_streaming_revision(release, shared_cache) -> None:
    full = load_dataset("cemnist", "overlap-task1", split="train")
    head = load_dataset("cemnist", "overlap-task1", split="train[:10%]")
    assert head.num_rows == 250 and head["uid"] == full["uid"][:250] and head.split == "train[:10%]"
    both = load_dataset("cemnist", "overlap-task1", split="train[-5:]+validation[:5]")
    assert both["uid"] == full["uid"][-5:] + load_dataset("cemnist", "overlap-task1", split="validation")["uid"][:5]
    parts = load_dataset("cemnist", "overlap-task1", split=["validation", "test[:3]"])
    assert isinstance(parts, list) and [p.num_rows for p in parts] == [500, 3]
    stream = load_dataset("cemnist", "overlap-task1", split="validation", streaming=True)
    assert isinstance(stream, datasets.IterableDataset) and stream.info.config_name == "overlap-task1"
    first3 = [r["uid"] for _, r in zip(range(3), stream)]
    assert first3 == load_dataset("cemnist", "overlap-task1", split="validation[:3]")["uid"]
    sdict = load_dataset("cemnist", "overlap-task1", streaming=True)
    assert isinstance(sdict, datasets.IterableDatasetDict) and list(sdict) == ["train", "validation", "test"]
    tagged = load_dataset("cemnist", "overlap-task1", split="validation[:3]", revision="v1.0.0", cache_dir=shared_cache)
    assert tagged["uid"] == first3


def test_options_that_make_no_sense_are_rejected_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"data_files=\{'train': 'x.parquet'\} is not supported for CEMNIST: a release has fixed files per config"):
        load_dataset("cemnist", "overlap-task1", data_files={"train": "x.parquet"})
    with pytest.raises(ValueError, match=r"verification_mode='no_checks' .*cannot be turned off"):
        load_dataset("cemnist", "overlap-task1", verification_mode="no_checks")
    with pytest.raises(ValueError, match=r"num_proc=4 .*nothing to prepare"):
        load_dataset("cemnist", "overlap-task1", num_proc=4)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['colour'\\]"):
        load_dataset("cemnist", "overlap-task1", colour="red")


def test_returned_objects_carry_their_identity(release) -> None:
    ds = load_dataset("cemnist", "disjoint-task3", split="test")
    info = ds.info
    assert info.config_name == "disjoint-task3" and info.dataset_name == "cemnist"
    assert info.license == "cc-by-sa-3.0" and info.homepage == "https://huggingface.co/datasets/cemnist/cemnist"
    assert "continual" in info.description and "disjoint-task3" in info.description
    assert info.citation.startswith("@misc{cemnist2026") and "url" in info.citation and "author" in info.citation
    assert str(info.version) == "1.0.0" and info.splits["test"].num_examples == ds.num_rows


def test_the_hub_id_offline_is_the_package_release(release) -> None:
    ds = load_dataset("cemnist/cemnist", "overlap-task4", split="validation[:2]")
    assert ds["uid"] == load_dataset("cemnist", task=4, split="validation[:2]")["uid"]


@pytest.mark.parametrize("path", ["./no-such-release", "_release/v9.9.9", "a/b/c", "~/no-such-cemnist-folder"])
def test_a_missing_local_path_says_no_such_folder_and_leaves_nothing(path: str, tmp_path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_dataset(path, "overlap-task0", cache_dir=cache)
    assert not cache.exists()


def test_an_uncached_hub_id_offline_says_so_and_leaves_nothing(tmp_path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match=r"no such folder: someone/fork; .*not cached while the Hub is offline"):
        load_dataset("someone/fork", "overlap-task0", cache_dir=cache)
    assert not cache.exists()


class RecordingSnapshotDownload:
    """A recording fake of ``huggingface_hub.snapshot_download``: serves the files of a local release
    folder that match ``allow_patterns`` (matched by huggingface_hub's own filter) and records each call."""

    def __init__(self, served: Path) -> None:
        self.served = served
        self.calls: list[dict] = []

    def __call__(self, *, repo_id: str, repo_type: str, revision: str, local_dir: str, allow_patterns: list[str]) -> str:
        from huggingface_hub.utils import filter_repo_objects

        self.calls.append({"repo_id": repo_id, "repo_type": repo_type, "revision": revision, "allow_patterns": allow_patterns})
        names = sorted(str(p.relative_to(self.served)) for p in self.served.rglob("*") if p.is_file())
        for name in filter_repo_objects(names, allow_patterns=allow_patterns):
            dst = Path(local_dir) / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.served / name, dst)
        (Path(local_dir) / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)
        return local_dir


def test_a_hub_fetch_downloads_only_the_requested_config(release, tmp_path, monkeypatch) -> None:
    import huggingface_hub

    from cemnist_data import loader

    fake = RecordingSnapshotDownload(release.path)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    monkeypatch.setattr(loader, "_hub_offline", lambda: False)
    cache = tmp_path / "cache"
    ds = load_dataset("someone/fork", "overlap-task2", split="validation", revision="v1.0.0", cache_dir=cache)
    assert ds["uid"] == load_dataset("cemnist", task=2, split="validation")["uid"]
    # first the card, manifest and other small files, then the files of the one config asked for
    assert not any(p.startswith("data/") for p in fake.calls[0]["allow_patterns"]) and "manifest.json" in fake.calls[0]["allow_patterns"]
    assert fake.calls[1]["allow_patterns"] == ["data/overlap-task2/*"]
    assert {c["repo_id"] for c in fake.calls} == {"someone/fork"} and {c["revision"] for c in fake.calls} == {"v1.0.0"}
    folder = cache / "hub" / "someone--fork" / "v1.0.0"
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["overlap-task2"] and not (folder / ".cache").exists()
    load_dataset("someone/fork", "joint", split="test[:2]", revision="v1.0.0", cache_dir=cache)  # fetches one more config
    assert fake.calls[2]["allow_patterns"] == ["data/joint/*"] and len(fake.calls) == 3
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["joint", "overlap-task2"]


# --- docs/RELIABILITY.md, first round, row 3: no unchecked Arrow copy; row 7: an unreadable record means
#     "not verified yet" ---


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_loading_writes_no_arrow_copy_and_reads_only_verified_bytes(release, tmp_path) -> None:
    from cemnist_data import CemnistIntegrityError
    from cemnist_data.release import split_path

    folder = tmp_path / "rel"
    shutil.copytree(release.path, folder)
    hf_cache = Path(os.environ["HF_DATASETS_CACHE"])
    before = _tree(hf_cache) if hf_cache.exists() else {}
    cache = tmp_path / "cache"
    ds = load_dataset(str(folder), "overlap-task2", split="train", cache_dir=cache)
    assert ds.cache_files == []  # in memory, parsed from the verified bytes
    assert sorted(p.name for p in cache.iterdir()) == ["verified"]
    assert (_tree(hf_cache) if hf_cache.exists() else {}) == before
    # one changed byte in the list column region of a verified file: the next load refuses it
    f = folder / split_path("overlap-task2", "train")
    data = bytearray(f.read_bytes())
    data[len(data) - 2000] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(CemnistIntegrityError, match=r"overlap-task2/train-00000-of-00001.parquet changed since it was verified"):
        load_dataset(str(folder), "overlap-task2", split="train", cache_dir=cache)


@pytest.mark.parametrize("garbage", [b"\x00\xffnot json", b"", b"[1, 2]", b'{"files": 7}'])
def test_an_unreadable_record_means_not_verified_yet(small_release, tmp_path, garbage: bytes) -> None:
    """A release folder's verification record that cannot be read is no record: the next load re-hashes the
    files and rewrites it (docs/RELIABILITY.md, first round, row 7). Any release folder behaves so: a small
    custom build (tests/conftest.py) checks it in a fraction of the published release's hashing time."""
    from cemnist_data.loader import _record_path

    cache = tmp_path / "cache"
    load_dataset(str(small_release), "overlap-task1", split="validation", cache_dir=cache)
    rec = _record_path(small_release, cache)
    rec.write_bytes(garbage)
    ds = load_dataset(str(small_release), "overlap-task1", split="validation", cache_dir=cache)
    assert ds.num_rows == 8  # validation_per_task of the small build
    written = json.loads(rec.read_text())
    assert written["folder"] == str(small_release)
    assert "data/overlap-task1/validation-00000-of-00001.parquet" in written["files"]
    rec.write_bytes(garbage)
    from cemnist_data.cli import main as cli_main

    assert cli_main(["verify", str(small_release), "--cache-dir", str(cache), "--quiet"]) == 0
    assert len(json.loads(rec.read_text())["files"]) == 33


# --- datasets' defaults are accepted; streaming in shards ---------------------------------------------


def test_datasets_defaults_are_accepted(release) -> None:
    """Code written for datasets.load_dataset passes its defaults explicitly; they must not raise."""
    from cemnist_data.features import FEATURES

    want = load_dataset("cemnist", "overlap-task1", split="validation[:3]")["uid"]
    defaults = dict(data_dir=None, data_files=None, features=None, download_config=None, download_mode=None,
                    verification_mode=None, keep_in_memory=None, save_infos=False, token=None, num_proc=None,
                    storage_options=None, trust_remote_code=None)
    assert load_dataset("cemnist", "overlap-task1", split="validation[:3]", **defaults)["uid"] == want
    same = dict(features=FEATURES.copy(), download_mode=datasets.DownloadMode.REUSE_DATASET_IF_EXISTS,
                verification_mode=datasets.VerificationMode.ALL_CHECKS, keep_in_memory=True, token=True, num_proc=1,
                trust_remote_code=False)
    assert load_dataset("cemnist", "overlap-task1", split="validation[:3]", **same)["uid"] == want


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"verification_mode": datasets.VerificationMode.NO_CHECKS}, r"verification_mode=<VerificationMode.NO_CHECKS.*cannot be turned off"),
    ({"num_proc": 4}, r"num_proc=4 is not supported for CEMNIST: there is nothing to prepare"),
    ({"token": "hf_secret"}, r"token='hf_secret' is not supported .*HF_TOKEN"),
    ({"data_dir": "x"}, r"data_dir='x' is not supported .*fixed files per config"),
    ({"download_mode": "reuse_everything"}, r"download_mode='reuse_everything' is not supported .*force_redownload"),
    ({"features": datasets.Features({"image": datasets.Image()})}, r"features=.* the features are fixed by the release"),
])
def test_values_other_than_datasets_defaults_are_refused_with_the_value(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_dataset("cemnist", "overlap-task1", split="validation", **kwargs)


def test_revision_main_works_with_a_warning(release) -> None:
    with pytest.warns(UserWarning, match=r"revision='main' is not a pinned release.*revision='v1.0.0'"):
        ds = load_dataset("cemnist", "overlap-task1", split="validation[:2]", revision="main")
    assert ds["uid"] == load_dataset("cemnist", "overlap-task1", split="validation[:2]", revision="v1.0.0")["uid"]


def test_force_redownload_rebuilds_a_damaged_cached_config(release, tmp_path) -> None:
    from cemnist_data import CemnistIntegrityError
    from cemnist_data.release import split_path

    cache = tmp_path / "cache"
    folder = cache / "releases" / "1.0.0"
    shutil.copytree(release.path, folder)
    f = folder / split_path("overlap-task1", "validation")
    good = f.read_bytes()
    f.write_bytes(good[:-64])
    with pytest.raises(CemnistIntegrityError, match="overlap-task1/validation"):
        load_dataset("cemnist", "overlap-task1", split="validation", cache_dir=cache)
    ds = load_dataset("cemnist", "overlap-task1", split="validation", cache_dir=cache, download_mode="force_redownload")
    assert ds.num_rows == 500 and f.read_bytes() == good  # offline: rebuilt byte for byte from the package
    with pytest.raises(ValueError, match="force_redownload' contradicts source='cache'"):
        load_dataset("cemnist", "overlap-task1", split="validation", cache_dir=cache, download_mode="force_redownload",
                     source="cache")


def test_force_redownload_of_a_local_folder_verifies_it_again_by_content(release, tmp_path) -> None:
    from cemnist_data import CemnistIntegrityError
    from cemnist_data.loader import _record_path
    from cemnist_data.release import split_path

    folder, cache = tmp_path / "rel", tmp_path / "cache"
    shutil.copytree(release.path, folder)
    load_dataset(str(folder), "overlap-task1", split="validation", cache_dir=cache)
    rec = _record_path(folder.resolve(), cache)
    record = json.loads(rec.read_text())
    rel = split_path("overlap-task1", "validation")
    other = (folder / split_path("overlap-task2", "validation")).read_bytes()  # valid parquet, other content
    (folder / rel).write_bytes(other)
    record["files"][rel] = __import__("hashlib").sha256(other).hexdigest()  # a record that vouches for it
    rec.write_text(json.dumps(record))
    trusted = load_dataset(str(folder), "overlap-task1", split="validation[:1]", cache_dir=cache)
    assert trusted[0]["uid"].startswith("overlap/validation/task2/")  # the record is trusted without force
    with pytest.raises(CemnistIntegrityError, match="overlap-task1/validation"):
        load_dataset(str(folder), "overlap-task1", split="validation", cache_dir=cache, download_mode="force_redownload")


@pytest.mark.parametrize("spec", ["train[33%:34%]", "test[-1%:]", "validation[7:9]+train[-2:]", "train[:1%]+test[:3]"])
def test_split_slices_match_plain_datasets(release, spec: str) -> None:
    """Slicing goes through ReadInstruction's public from_spec/to_absolute only; pinned to datasets' own result."""
    plain = datasets.load_dataset(str(release.path), "overlap-task1", split=spec)
    assert load_dataset("cemnist", "overlap-task1", split=spec)["uid"] == plain["uid"]


def test_streaming_has_shards_for_dataloader_workers(release) -> None:
    from torch.utils.data import DataLoader

    def shards(it: datasets.IterableDataset) -> int:  # num_shards; n_shards in older datasets
        return getattr(it, "num_shards", None) or it.n_shards

    stream = load_dataset("cemnist", "overlap-task1", split="validation", streaming=True)
    assert shards(stream) == 16
    assert shards(load_dataset("cemnist", "overlap-task1", split="validation[:3]", streaming=True)) == 3
    uids = [u for batch in DataLoader(stream.select_columns(["uid"]), batch_size=50, num_workers=2) for u in batch["uid"]]
    assert sorted(uids) == sorted(load_dataset("cemnist", "overlap-task1", split="validation")["uid"])

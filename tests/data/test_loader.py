"""Loading: offline load_dataset("cemnist"), plain datasets.load_dataset on the folder, torch tensors."""

from __future__ import annotations

import io
import os

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
        ({"task": 1, "config": "joint"}, "not both"),
        ({}, "pass task="),
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

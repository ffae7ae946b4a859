"""Every invariant of the v1 protocol, checked on the whole freshly built release."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from cemnist_data.content import canonical_from_table
from cemnist_data.loader import _content_view
from cemnist_data.mnist import load_mnist
from cemnist_data.registry import load_manifest
from cemnist_data.render import render_layout
from cemnist_data.spec import SPLITS, CemnistSpec

SPEC = CemnistSpec()
CONFIGS = SPEC.config_names()


@pytest.fixture(scope="module")
def columns(release):
    """Decoded canonical columns of every config/split of the release."""
    return {
        (cfg, split): canonical_from_table(pq.read_table(release.file(cfg, split)))
        for cfg in CONFIGS
        for split in SPLITS
    }


def test_fresh_build_reproduces_the_shipped_manifest(release) -> None:
    shipped = load_manifest("1.0.0")
    built = json.loads((release.path / "manifest.json").read_text())
    assert _content_view(built) == _content_view(shipped)
    assert set(built["files"]) == set(shipped["files"])


def test_sizes(columns) -> None:
    for cfg in CONFIGS:
        n_train = len(columns[(cfg, "train")]["task"])
        n_val = len(columns[(cfg, "validation")]["task"])
        factor = SPEC.num_tasks if cfg == "joint" else 1
        assert (n_train, n_val) == (2500 * factor, 500 * factor)
    assert len(columns[("joint", "test")]["task"]) == 5000
    assert len(columns[("overlap-task4", "test")]["task"]) == 5000  # every pool image has a seen digit at the end


def test_digit_counts_and_iou_bound(columns) -> None:
    for key, col in columns.items():
        k = (col["digits"] >= 0).sum(axis=1)
        assert k.min() >= 2 and k.max() <= 4, key
        # unused slots are exactly the tail of each row, aligned across the provenance lists
        for c in ("mnist_index", "top", "left"):
            assert ((col[c] >= 0) == (col["digits"] >= 0)).all(), (key, c)
        top, left = col["top"], col["left"]
        assert top.max() <= 32 and left.max() <= 32
        for a in range(4):
            for b in range(a + 1, 4):
                both = (col["digits"][:, a] >= 0) & (col["digits"][:, b] >= 0)
                inter = np.maximum(28 - np.abs(top[:, a] - top[:, b]), 0) * np.maximum(28 - np.abs(left[:, a] - left[:, b]), 0)
                iou = inter / (2 * 784 - inter)
                assert (iou[both] <= 0.25).all(), key


def test_mnist_sources_disjoint_across_splits(columns) -> None:
    for (cfg, split), col in columns.items():
        idx = col["mnist_index"][col["mnist_index"] >= 0]
        if split == "train":
            assert idx.max() < 50000 and set(col["mnist_split"]) == {"train"}
        elif split == "validation":
            assert idx.min() >= 50000 and idx.max() < 60000 and set(col["mnist_split"]) == {"train"}
        else:
            assert idx.max() < 10000 and set(col["mnist_split"]) == {"test"}


def test_provenance_rerenders_every_image(columns) -> None:
    mnist = load_mnist()
    for (cfg, split), col in columns.items():
        if cfg.startswith("disjoint") and split == "test":
            continue  # identical to the overlap test split (checked below)
        digits = mnist.test_images if split == "test" else mnist.train_images
        img, full, _ = render_layout(digits, col["digits"], col["mnist_index"], col["top"], col["left"])
        assert (img == col["image"]).all(), (cfg, split)
        assert (full == col["full_mask"]).all(), (cfg, split)
        # digits carry the MNIST label of their instance
        labels = (mnist.test_labels if split == "test" else mnist.train_labels)[np.maximum(col["mnist_index"], 0)].astype(np.int64)
        assert (np.where(col["digits"] >= 0, labels, -1) == col["digits"]).all()


@pytest.mark.parametrize("mode", ["overlap", "disjoint"])
def test_train_and_validation_labels(columns, mode: str) -> None:
    for t in range(SPEC.num_tasks):
        current = np.array(SPEC.tasks[t]) + 1
        seen = np.array(SPEC.seen_classes(t))
        for split in ("train", "validation"):
            col = columns[(f"{mode}-task{t}", split)]
            mask, full = col["mask"], col["full_mask"]
            assert set(np.unique(mask)) <= {0, *current.tolist()}
            # every image has at least one current-class pixel
            assert np.isin(mask, current).reshape(len(mask), -1).any(axis=1).all()
            # the mask is the full mask with every other label -> 0 (background shift)
            assert (mask == np.where(np.isin(full, current), full, 0)).all()
            assert (col["task"] == t).all()
            if mode == "disjoint":
                used = col["digits"][col["digits"] >= 0]
                assert set(np.unique(used)) <= set(seen.tolist())
            elif t < SPEC.num_tasks - 1:
                future = col["digits"] > max(seen)
                assert future.any(), "overlap images contain future digits"


def test_test_splits(columns) -> None:
    pool = columns[("joint", "test")]
    assert (pool["mask"] == pool["full_mask"]).all()
    for t in range(SPEC.num_tasks):
        seen = SPEC.seen_classes(t)
        labels = np.array(seen) + 1
        expect_rows = np.isin(pool["digits"], seen).any(axis=1)
        for mode in ("overlap", "disjoint"):
            col = columns[(f"{mode}-task{t}", "test")]
            assert col["uid"] == [u for u, keep in zip(pool["uid"], expect_rows) if keep]
            assert (col["image"] == pool["image"][expect_rows]).all()
            assert (col["mask"] == np.where(np.isin(col["full_mask"], labels), col["full_mask"], 0)).all()
            assert set(np.unique(col["mask"])) <= {0, *labels.tolist()}


def test_joint_is_the_union_of_overlap_tasks(columns) -> None:
    for split in ("train", "validation"):
        joint = columns[("joint", split)]
        parts = [columns[(f"overlap-task{t}", split)] for t in range(SPEC.num_tasks)]
        assert joint["uid"] == [u for p in parts for u in p["uid"]]
        assert (joint["image"] == np.concatenate([p["image"] for p in parts])).all()
        assert (joint["mask"] == joint["full_mask"]).all()
        assert (joint["task"] == -1).all()


def test_no_image_in_two_tasks(columns) -> None:
    for mode in ("overlap", "disjoint"):
        uids = [u for t in range(SPEC.num_tasks) for s in ("train", "validation") for u in columns[(f"{mode}-task{t}", s)]["uid"]]
        assert len(uids) == len(set(uids)) == 5 * 3000
        stacked = np.concatenate([columns[(f"{mode}-task{t}", "train")]["image"] for t in range(SPEC.num_tasks)])
        flat = stacked.reshape(len(stacked), -1)
        assert len(np.unique(flat, axis=0)) == len(flat)


def test_digit_count_distribution_in_the_pool(columns) -> None:
    k = (columns[("joint", "test")]["digits"] >= 0).sum(axis=1)
    counts = np.bincount(k, minlength=5)[2:]
    assert counts.sum() == 5000 and np.abs(counts / 5000 - 1 / 3).max() < 0.03  # k uniform in {2, 3, 4}

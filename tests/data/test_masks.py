"""Masks people can see (palette PNGs), labels programs can read (ids, id2label.json): docs/INTERFACES.md,
"Label space"."""

from __future__ import annotations

import io
import json

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from cemnist_data import load_dataset, load_tensors, to_numpy
from cemnist_data.content import ContentHasher, canonical_from_table
from cemnist_data.labels import ID2LABEL, LABEL2ID, MASK_PALETTE_RGB
from cemnist_data.png import decode_png_column, encode_png_batch
from cemnist_data.release import split_path


def test_released_masks_are_palette_pngs_decoded_to_label_ids(release) -> None:
    table = pq.read_table(release.file("overlap-task1", "train"))
    raw = table.column("mask")[0]["bytes"].as_py()
    with Image.open(io.BytesIO(raw)) as im:
        assert im.mode == "P" and im.getpalette()[:33] == [v for rgb in MASK_PALETTE_RGB for v in rgb]
        ids = np.asarray(im)
    assert set(np.unique(ids).tolist()) <= {0, 3, 4}  # task 1 labels digits 2, 3 as 3, 4
    with Image.open(io.BytesIO(table.column("image")[0]["bytes"].as_py())) as im:
        assert im.mode == "L"
    # datasets' Image feature keeps mode P (no mode= conversion): ids, not luminance
    ds = load_dataset("cemnist", "overlap-task1", split="train")
    assert ds.features["mask"].mode is None and ds.features["image"].mode == "L"
    row = ds[0]
    assert row["mask"].mode == "P" and (np.asarray(row["mask"]) == ids).all()
    plain = datasets.load_dataset(str(release.path), "overlap-task1", split="train")
    assert plain[0]["mask"].mode == "P" and (np.asarray(plain[0]["full_mask"]) == np.asarray(row["full_mask"])).all()
    assert (np.asarray(plain[0]["full_mask"].convert("L")) != np.asarray(row["full_mask"])).any()  # luminance != ids


def test_palette_masks_keep_the_shipped_content_hashes(release) -> None:
    """Content hashes are of decoded labels: the same split with grayscale masks hashes the same, and
    both equal the hash in the shipped v1.0.0 manifest (which was written before the switch)."""
    from cemnist_data.registry import load_manifest

    shipped = load_manifest("1.0.0")
    for cfg, split in (("disjoint-task3", "validation"), ("joint", "validation")):
        table = pq.read_table(release.file(cfg, split))
        grey_cols = {}
        for c in ("mask", "full_mask"):
            ids = decode_png_column(table.column(c))
            grey = encode_png_batch(ids)  # the former encoding: 8-bit grayscale
            assert all(Image.open(io.BytesIO(g)).mode == "L" for g in grey[:3])
            grey_cols[c] = pa.StructArray.from_arrays([pa.array(grey, pa.binary()), pa.nulls(len(grey), pa.string())],
                                                      names=["bytes", "path"])
        grey_table = table.set_column(table.schema.get_field_index("mask"), "mask", grey_cols["mask"])
        grey_table = grey_table.set_column(grey_table.schema.get_field_index("full_mask"), "full_mask", grey_cols["full_mask"])
        digests = []
        for t in (table, grey_table):
            h = ContentHasher()
            h.update(canonical_from_table(t))
            digests.append(h.hexdigest())
        assert digests[0] == digests[1] == shipped["configs"][cfg]["splits"][split]["content_sha256"]


def test_torch_paths_agree_on_the_ids(release) -> None:
    ds = load_dataset("cemnist", task=2, split="validation[:16]")
    _, masks = load_tensors("cemnist", task=2, split="validation[:16]")
    via_datasets = ds.with_format("torch")[:]["mask"]
    assert masks.shape == (16, 60, 60) and via_datasets.shape == (16, 1, 60, 60)  # documented shapes
    assert torch.equal(via_datasets[:, 0], masks)
    assert (to_numpy(ds, columns=("mask",))[0] == masks.numpy()).all()


def test_id2label_ships_with_the_release(release) -> None:
    shipped = json.loads((release.path / "id2label.json").read_text())
    assert shipped == {str(k): v for k, v in ID2LABEL.items()} and len(shipped) == 11
    assert shipped["0"] == "background" and shipped["10"] == "digit_9" and LABEL2ID["digit_0"] == 1


def test_mask_palette_is_the_pictures_palette() -> None:
    from cemnist_data.viz.palette import DIGIT_COLORS_RGB

    assert MASK_PALETTE_RGB[0] == (0, 0, 0)
    assert [list(c) for c in MASK_PALETTE_RGB[1:]] == DIGIT_COLORS_RGB.tolist()


def test_the_split_files_named_by_the_card_hold_palette_masks(release) -> None:
    for cfg in ("overlap-task0", "joint"):
        col = pq.read_table(release.path / split_path(cfg, "test"), columns=["full_mask"]).column("full_mask")
        assert Image.open(io.BytesIO(col[0]["bytes"].as_py())).mode == "P"

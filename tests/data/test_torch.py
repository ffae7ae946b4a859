"""Issue 11 §5: PyTorch habits (a Dataset class, a scenario over tasks, device/dtype, a cheap import)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader

from cemnist_data import CemnistScenario, CemnistSegmentation, load_tensors


def test_dataset_class_is_a_thin_view_of_load_tensors(release) -> None:
    ds = CemnistSegmentation(task=1, split="validation", mode="disjoint")
    images, masks = load_tensors("cemnist", task=1, split="validation", mode="disjoint")
    assert len(ds) == 500 and isinstance(ds, torch.utils.data.Dataset)
    image, mask = ds[7]
    assert image.shape == (1, 60, 60) and image.dtype == torch.float32 and float(image.max()) <= 1.0
    assert mask.shape == (60, 60) and mask.dtype == torch.int64
    assert torch.equal((image[0] * 255).round().to(torch.uint8), images[7]) and torch.equal(mask, masks[7].long())
    assert torch.equal(ds.images, images)
    x, y = next(iter(DataLoader(ds, batch_size=8)))
    assert x.shape == (8, 1, 60, 60) and y.shape == (8, 60, 60)
    flipped = CemnistSegmentation(task=1, split="validation", mode="disjoint",
                                  transform=lambda t: t.flip(-1), target_transform=lambda t: t + 100)
    a, b = flipped[7]
    assert torch.equal(a, image.flip(-1)) and torch.equal(b, mask + 100)
    full = CemnistSegmentation(config="joint", split="test", mask_column="full_mask")
    assert len(full) == 5000 and "config='joint'" in repr(full)
    with pytest.raises(IndexError, match="out of range for a split of 500 images"):
        ds[500]
    with pytest.raises(ValueError, match="mask_column must be 'mask' or 'full_mask'"):
        CemnistSegmentation(task=1, mask_column="labels")
    with pytest.raises(ValueError, match="contradicts"):
        CemnistSegmentation(config="overlap-task1", mode="disjoint")


def test_scenario_iterates_over_tasks_like_continuum(release) -> None:
    scenario = CemnistScenario(split="validation", mode="overlap")
    assert len(scenario) == 5 and scenario.tasks[4] == [8, 9]
    seen = []
    for task_id, taskset in enumerate(scenario):
        assert isinstance(taskset, CemnistSegmentation) and taskset.task == task_id
        labels = set(torch.unique(taskset.masks).tolist())
        assert labels <= {0, 2 * task_id + 1, 2 * task_id + 2}
        seen.append(len(taskset))
    assert seen == [500] * 5
    with pytest.raises(IndexError, match=r"task must be an integer in \[0, 4\]"):
        scenario[5]
    with pytest.raises(ValueError, match="a scenario holds them all"):
        CemnistScenario(task=1)


def test_load_tensors_device_and_dtype(release) -> None:
    images, masks = load_tensors("cemnist", task=0, split="validation[:4]", device="cpu", dtype=torch.float32)
    raw, _ = load_tensors("cemnist", task=0, split="validation[:4]")
    assert images.dtype == torch.float32 and masks.dtype == torch.uint8 and images.device.type == "cpu"
    assert torch.allclose(images * 255, raw.float())
    with pytest.raises(ValueError, match="dtype must be torch.uint8 or a floating dtype"):
        load_tensors("cemnist", task=0, split="validation", dtype=torch.int32)


def test_import_is_cheap_torch_and_datasets_load_on_first_use() -> None:
    code = ("import sys, json, cemnist_data; before = sorted(m for m in ('torch', 'datasets', 'pyarrow') if m in sys.modules);"
            "cemnist_data.load_dataset; print(json.dumps([before, 'datasets' in sys.modules, 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, datasets_after, torch_after = json.loads(out)
    assert before == [] and datasets_after and not torch_after

"""PyTorch habits of the data API (a Dataset class, a scenario over tasks, device/dtype, a cheap import):
docs/INTERFACES.md, "Data API (`cemnist_data`)"."""

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


# --- torchvision's dataset conventions -----------------------------------------------------------------


def _plain(t: torch.Tensor) -> torch.Tensor:
    return t.as_subclass(torch.Tensor)


def test_joint_transforms_move_image_and_mask_together(release) -> None:
    base = CemnistSegmentation(task=1, split="validation")
    image, mask = base[3]
    joint = CemnistSegmentation(task=1, split="validation", transforms=lambda x, y: (x.flip(-1), y.flip(-1)))
    a, b = joint[3]
    assert torch.equal(_plain(a), _plain(image).flip(-1)) and torch.equal(_plain(b), _plain(mask).flip(-1))
    assert not torch.equal(_plain(mask), _plain(mask).flip(-1))  # the test can tell a flipped mask from the original
    # transform= alone changes the image only (torchvision's meaning): the reason transforms= exists
    only = CemnistSegmentation(task=1, split="validation", transform=lambda x: x.flip(-1))
    a, b = only[3]
    assert torch.equal(_plain(a), _plain(image).flip(-1)) and torch.equal(_plain(b), _plain(mask))
    with pytest.raises(ValueError, match="pass either transforms= .* not both"):
        CemnistSegmentation(task=1, transforms=lambda x, y: (x, y), transform=lambda x: x)
    with pytest.raises(ValueError, match="transforms must be callable or None, got int"):
        CemnistSegmentation(task=1, transforms=3)


def test_root_train_and_download_as_in_torchvision(release, shared_cache, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    test = CemnistSegmentation(shared_cache, task=2, train=False)
    assert test.split == "test" and len(test) == release.manifest["configs"]["overlap-task2"]["splits"]["test"]["num_rows"]
    assert len(CemnistSegmentation(root=shared_cache, task=2, train=True)) == 2500
    with caplog.at_level(logging.INFO, logger="cemnist"):
        CemnistSegmentation(root=shared_cache, task=0, split="validation", download=True)
    assert "download=True changes nothing" in caplog.text
    with pytest.raises(ValueError, match=r"train=True \(the 'train' split\) contradicts split='test'"):
        CemnistSegmentation(task=0, train=True, split="test")
    with pytest.raises(ValueError, match="train must be True .* got 'yes'"):
        CemnistSegmentation(task=0, train="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="root=.* contradicts cache_dir=.*pass one of them"):
        CemnistSegmentation(shared_cache, task=0, cache_dir=shared_cache / "other")
    with pytest.raises(ValueError, match="download must be True or False"):
        CemnistSegmentation(task=0, download="yes")  # type: ignore[arg-type]
    scenario = CemnistScenario(shared_cache, train=False)
    assert scenario[4].split == "test" and scenario.cache_dir == shared_cache


def test_a_broken_torchvision_means_plain_tensors(release, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A torchvision that raises on import (a CUDA build beside a CPU torch does) is treated as absent."""
    import importlib.abc
    import logging

    from cemnist_data import torch_views

    class Broken(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):  # noqa: ANN001
            if name == "torchvision" or name.startswith("torchvision."):
                raise RuntimeError("operator torchvision::nms does not exist")
            return None

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [Broken(), *sys.meta_path])
    monkeypatch.setattr(torch_views, "_TV", False)
    with caplog.at_level(logging.INFO, logger="cemnist"):
        image, mask = CemnistSegmentation(task=0, split="validation")[0]
    assert type(image) is torch.Tensor and type(mask) is torch.Tensor
    assert "torchvision does not import (RuntimeError" in caplog.text


def test_torchvision_v2_pipeline_moves_the_mask(release) -> None:
    tv = pytest.importorskip("torchvision", exc_type=ImportError)
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    del tv
    ds = CemnistSegmentation(task=1, split="validation")
    image, mask = ds[3]
    assert isinstance(image, tv_tensors.Image) and isinstance(mask, tv_tensors.Mask)
    flip = v2.RandomHorizontalFlip(p=1.0)
    a, b = flip(image, mask)
    assert torch.equal(_plain(a), _plain(image).flip(-1)) and torch.equal(_plain(b), _plain(mask).flip(-1))
    pipeline = v2.Compose([v2.RandomHorizontalFlip(p=1.0), v2.RandomVerticalFlip(p=1.0)])
    a, b = CemnistSegmentation(task=1, split="validation", transforms=pipeline)[3]
    assert torch.equal(_plain(b), _plain(mask).flip(-1).flip(-2)) and torch.equal(_plain(a), _plain(image).flip(-1).flip(-2))
    x, y = next(iter(DataLoader(CemnistSegmentation(task=1, split="validation", transforms=pipeline), batch_size=4)))
    assert x.shape == (4, 1, 60, 60) and y.shape == (4, 60, 60) and y.dtype == torch.int64

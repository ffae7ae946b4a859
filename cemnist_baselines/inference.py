"""Inference with a trained model: the old model's outputs cached once per task (teacher caching), predicted
labels, and the full-label-space confusion every metric is folded from (:mod:`.metrics`)."""
from __future__ import annotations

import torch

from cemnist_data.labels import NUM_LABELS

from .metrics import update_confusion
from .model import SimpleSegNet


@torch.inference_mode()
def teacher_logits(old_model: SimpleSegNet, images: torch.Tensor, *, batch_size: int, amp: bool) -> torch.Tensor:
    """The frozen old model's logits for every image, computed once per task (teacher caching).

    Stored as bf16 when training runs under bf16 autocast (that is what the old model outputs there), else fp32.
    Without augmentation the logits are a fixed function of the image, so this equals running the old model
    on every batch up to float rounding."""
    dev = images.device
    out = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].unsqueeze(1).float().div(255.0)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            out.append(old_model(x).to(torch.bfloat16 if amp else torch.float32).contiguous())
    return torch.cat(out)


@torch.inference_mode()
def teacher_outputs(old_model: SimpleSegNet, images: torch.Tensor, *, features: tuple[str, ...], batch_size: int,
                    amp: bool) -> dict[str, torch.Tensor]:
    """:func:`teacher_logits` plus the old model's feature maps ``features`` (names of
    :meth:`cemnist_baselines.model.SimpleSegNet.forward_features`) for every image, computed once per task: ``{"logits": ...,
    name: ...}``, stored as the old model outputs them (bf16 under bf16 autocast). Each image's outputs do not
    depend on the other images of its batch on the CPUs measured (``tests/baselines/test_teacher_cache.py``), so
    a run with this cache is bit-identical to one that runs the old model on every batch there."""
    dev = images.device
    dtype = torch.bfloat16 if amp else torch.float32
    out: dict[str, list[torch.Tensor]] = {"logits": [], **{k: [] for k in features}}
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].unsqueeze(1).float().div(255.0)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            t, feats = old_model.forward_features(x)
        out["logits"].append(t.to(dtype).contiguous())
        for k in features:
            out[k].append(feats[k].to(dtype).contiguous())
    return {k: torch.cat(v) for k, v in out.items()}


@torch.inference_mode()
def predict_labels(model: SimpleSegNet, images: torch.Tensor, ch2lab: torch.Tensor, *, batch_size: int,
                   amp: bool = False) -> torch.Tensor:
    """Predicted labels (uint8, label space) for uint8 images."""
    out = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].unsqueeze(1).float().div(255.0)
        with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16, enabled=amp):
            z = model(x)
        out.append(ch2lab[z.float().argmax(1)].to(torch.uint8))
    return torch.cat(out) if out else torch.empty((0,) + tuple(images.shape[1:]), dtype=torch.uint8, device=images.device)


@torch.inference_mode()
def confusion(model: SimpleSegNet, images: torch.Tensor, masks: torch.Tensor, ch2lab: torch.Tensor, *,
              batch_size: int, amp: bool = False) -> torch.Tensor:
    """11x11 int64 confusion (rows = true label, cols = predicted label) accumulated on the device.

    With ``masks`` = the pool's ``full_mask`` this is the full-label-space matrix every view is folded from."""
    conf = torch.zeros(NUM_LABELS, NUM_LABELS, dtype=torch.int64, device=images.device)
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].unsqueeze(1).float().div(255.0)
        with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16, enabled=amp):
            z = model(x)
        update_confusion(conf, masks[i:i + batch_size], ch2lab[z.float().argmax(1)])
    return conf

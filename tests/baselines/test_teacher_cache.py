"""Teacher caching: the frozen old model's outputs computed once per task instead of on every batch.

It is a speed option (it never splits leaderboard rows), so a cached run must give the numbers of a run that
runs the old model on every batch. It does bit for bit where each image's outputs do not depend on the other
images of its batch — measured for bf16 autocast (the v1 protocol) on AMD EPYC with AVX-512 BF16; in fp32 the
convolution kernels there depend on the batch size in the last bits, so fp32 runs agree up to float rounding.
"""
from __future__ import annotations

import pytest
import torch


from cemnist_baselines.registry import METHODS
from cemnist_baselines.model import SimpleSegNet
from cemnist_baselines.inference import teacher_logits, teacher_outputs


def _cached_and_per_batch(amp: bool):
    """The cached outputs of 70 images (batches of 50) and the same images' outputs in batches of 32 and 6 in
    another order: a list of (cached, per-batch) pairs for the logits and enc3."""
    model = SimpleSegNet(5, generator=torch.Generator().manual_seed(0)).eval()
    images = torch.randint(0, 256, (70, 60, 60), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    cached = teacher_outputs(model, images, features=("enc3",), batch_size=50, amp=amp)
    assert set(cached) == {"logits", "enc3"} and cached["enc3"].shape == (70, 32, 15, 15)
    assert cached["logits"].dtype == (torch.bfloat16 if amp else torch.float32)
    assert torch.equal(cached["logits"], teacher_logits(model, images, batch_size=50, amp=amp))
    idx = torch.randperm(70, generator=torch.Generator().manual_seed(2))
    pairs = []
    for sel in (idx[:32], idx[32:38]):  # a training batch and a last, partial one, in another order
        x = images[sel].unsqueeze(1).float().div(255)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            t, feats = model.forward_features(x)
        pairs += [(cached["logits"][sel], t.to(cached["logits"].dtype)),
                  (cached["enc3"][sel], feats["enc3"].to(cached["enc3"].dtype))]
    return pairs


def batch_independent(amp: bool) -> bool:
    """Whether, on this machine, every image's old-model outputs are bitwise the same in any batch."""
    return all(torch.equal(a, b) for a, b in _cached_and_per_batch(amp))


@pytest.mark.parametrize("amp", [True, False])
def test_cached_old_outputs_are_the_per_batch_ones(amp):
    for a, b in _cached_and_per_batch(amp):
        assert torch.allclose(a.float(), b.float(), rtol=1e-2 if amp else 1e-5, atol=1e-2 if amp else 1e-5)


@pytest.mark.parametrize("method", ["ilt", "kd"])
def test_a_cached_run_matches_one_that_runs_the_old_model_per_batch(method, tiny_cfg, tmp_path):
    """Bit-identical where the old outputs are batch-independent (bf16 on the machine that made the board's new
    rows); otherwise the same numbers up to rounding."""
    from cemnist_baselines.trainer import run_one

    assert METHODS["ilt"].cached_features == ("enc3",) and not METHODS["ilt"].old_model_per_batch
    cfg = tiny_cfg.replace(max_train=32, max_test=16, amp_bf16=True)  # two steps per task: the cache is reused
    res = {}
    for cache in (True, False):
        res[cache] = run_one(method=method, seed=0, cfg=cfg.replace(teacher_cache=cache), out_dir=tmp_path / str(cache),
                             preset="tiny", device="cpu", progress=False)
    assert res[True]["protocol"] == res[False]["protocol"]  # a speed option: one leaderboard row
    assert res[True]["steps"][-1]["miou_bg"] > 0  # a real run, not an empty one
    if batch_independent(amp=True):
        assert res[True]["steps"] == res[False]["steps"] and res[True]["final"] == res[False]["final"]
    else:
        for a, b in zip(res[True]["steps"], res[False]["steps"]):
            assert abs(a["miou_bg"] - b["miou_bg"]) < 0.05

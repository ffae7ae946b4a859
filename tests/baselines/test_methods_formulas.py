"""ILT, PL, PLOP and replay formulas on tiny hand-checked tensors, and against transcriptions of the reference
code (``fcdl94/MiB`` utils/loss.py + train.py, ``arthurdouillard/CVPR2021_PLOP`` train.py) written here
independently, loop by loop, in the reference's order."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cemnist_baselines.losses import (feature_distillation_loss, plop_find_median, mib_kd_loss, local_pod_embedding,
                                      local_pod_loss, local_pod_terms, plop_entropy,
                                      plop_pseudo_ce, plop_thresholds, pseudo_label_targets)
from cemnist_baselines.methods import Method, Replay, TaskContext, memory_quotas, overrides
from cemnist_baselines.model import SEGNET_BLOCKS
from cemnist_baselines.registry import METHODS
from cemnist_data.labels import IGNORE
from cemnist_baselines.model import SimpleSegNet

D = torch.float64


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


# ----------------------------------------------------------------------------- features
def test_forward_features_is_the_model_forward_with_its_maps():
    m = SimpleSegNet(5, width=8, generator=torch.Generator().manual_seed(3))
    x = torch.rand(2, 1, 60, 60, generator=torch.Generator().manual_seed(4))
    z, f = m.forward_features(x)
    assert torch.equal(z, m(x))
    sizes = {"enc1": 60, "enc2": 30, "enc3": 15, "dec1": 30, "dec2": 60}
    for b in SEGNET_BLOCKS:
        assert f[b].shape == (2, 8, sizes[b], sizes[b])
        assert torch.equal(f[b], F.relu(f[b + ".pre"]))
        assert bool((f[b + ".pre"] < 0).any())  # pre-activation maps keep their sign


# ----------------------------------------------------------------------------- ILT (MiB code)
def _mib_kd(inputs, targets):
    """MiB KnowledgeDistillationLoss(alpha=1, reduction='mean'), transcribed."""
    n = targets.shape[1]
    logp = torch.log_softmax(inputs[:, :n], dim=1)
    q = torch.softmax(targets, dim=1)
    return -torch.mean((logp * q).mean(dim=1))


def test_feature_distillation_hand_computed():
    fn = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=D)
    fo = torch.zeros_like(fn)
    assert feature_distillation_loss(fn, fo).item() == pytest.approx((1 + 4 + 9 + 16) / 4)
    assert feature_distillation_loss(fn, fn).item() == 0.0


def test_ilt_is_ce_plus_100_kd_plus_100_mse_on_the_encoder_output():
    ilt = METHODS["ilt"]
    assert (ilt.kd_weight, ilt.de_weight) == (100.0, 100.0)  # MiB argparser.py, --method ILT
    assert ilt.protocol_values() == {"kd_weight": 100.0, "de_weight": 100.0}
    assert ilt.features and not ilt.old_model_per_batch and ilt.cached_features == ("enc3",)
    assert ilt.uses_old_model and not ilt.balanced_init
    z, t = _rand(2, 5, 3, 3), _rand(2, 3, 3, 3, seed=1)
    y = torch.randint(0, 5, (2, 3, 3), generator=torch.Generator().manual_seed(2))
    y[0, 0, 0] = IGNORE
    feats = {"enc3": _rand(2, 4, 2, 2, seed=3), "enc1": _rand(2, 4, 2, 2, seed=9)}
    old = {"enc3": _rand(2, 4, 2, 2, seed=4), "enc1": _rand(2, 4, 2, 2, seed=10)}
    ref = (F.cross_entropy(z, y, ignore_index=255) + 100 * _mib_kd(z, t)
           + 100 * torch.nn.MSELoss()(feats["enc3"], old["enc3"]))
    got = ilt.feature_loss(z, y, t, feats, old, c_old=3, kd_lambda=10.0, state={})
    assert got.item() == pytest.approx(ref.item(), rel=1e-12)
    assert _mib_kd(z, t).item() == pytest.approx(mib_kd_loss(z, t).item(), rel=1e-12)  # the kd term is MiB's


# ----------------------------------------------------------------------------- PL
def test_pseudo_labels_hand_checked():
    # 1 image, 1x4 pixels; c_old = 3 (bg + 2 old classes); new classes 3, 4
    y = torch.tensor([[[0, 0, 3, 255]]])
    t = torch.zeros(1, 3, 1, 4, dtype=D)
    t[0, 2, 0, 0] = 5.0   # pixel 0: old argmax = class 2 -> takes 2
    t[0, 0, 0, 1] = 5.0   # pixel 1: old argmax = bg -> stays 0
    t[0, 1, 0, 2] = 5.0   # pixel 2: new class 3 in the mask -> unchanged
    t[0, 1, 0, 3] = 5.0   # pixel 3: ignored -> unchanged
    assert pseudo_label_targets(y, t, c_old=3).tolist() == [[[2, 0, 3, 255]]]
    # PLOP train.py, pseudo_labeling == "naive", transcribed
    labels = y.clone()
    mask_background = labels < 3
    labels[mask_background] = t.argmax(dim=1)[mask_background]
    assert torch.equal(labels, pseudo_label_targets(y, t, c_old=3))
    assert overrides(METHODS["pl"], "targets") and not overrides(METHODS["kd"], "targets")


# ----------------------------------------------------------------------------- PLOP
def _plop_entropy_ref(p):
    """PLOP train.py entropy(), transcribed."""
    factor = 1 / math.log(p.shape[1] + 1e-8)
    return -factor * torch.mean(p * torch.log(p + 1e-8), dim=1)


def test_plop_entropy_hand_checked():
    p = torch.tensor([0.5, 0.5], dtype=D).reshape(1, 2, 1, 1)
    # -(1/log 2) * mean(0.5 log 0.5, 0.5 log 0.5) = 0.5 (PLOP averages over channels)
    assert plop_entropy(p).item() == pytest.approx(0.5, rel=1e-7)
    assert plop_entropy(torch.tensor([1.0, 0.0], dtype=D).reshape(1, 2, 1, 1)).item() == pytest.approx(0, abs=1e-7)
    q = torch.softmax(_rand(2, 4, 3, 3), dim=1)
    assert torch.allclose(plop_entropy(q), _plop_entropy_ref(q), rtol=1e-12)


def _plop_median_loop(h, nb_bins):
    """PLOP train.py find_median's per-class loop, transcribed (it adds the bin index to its running sum)."""
    total = float(h.sum())
    half = total / 2
    running = 0.0
    for j in range(nb_bins):
        if running <= half <= running + float(h[j]):
            break
        running += j
    return j / nb_bins + (half - running) / float(h[j]) * (1 / nb_bins)


def test_plop_find_median_hand_checked():
    """PLOP's find_median loop (running sum grows by the bin index, not the count), worked by hand (4 bins)."""
    hist = torch.tensor([[0, 4, 0, 0], [2, 2, 0, 0], [3, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    med = plop_find_median(hist, base=0.001).tolist()
    # row 0: half 2; bin 0 no (2 > 0); bin 1: 0 <= 2 <= 0 + 4 -> 1/4 + (2 - 0)/4/4 = 0.375
    # row 1: half 2 <= 2 in bin 0 -> 2/2/4 = 0.25; row 2: 2/3/4; empty row -> 0 -> base 0.001
    # row 4: half 2; bin 0: 2 > 1; running += 0; bin 1: 2 > 0 + 1; running += 1; bin 2: 2 <= 1 + 1 -> 2/4 + (2-1)/1/4
    #        = 0.75 (a histogram median would give 0.5: the loop adds bin indices)
    assert med == pytest.approx([0.375, 0.25, 2 / 12, 0.001, 0.75])
    for r in (0, 1, 2, 4):  # an independent float transcription of the loop agrees
        assert med[r] == pytest.approx(_plop_median_loop(hist[r], 4))


def test_plop_find_median_without_a_bin_holding_half_the_pixels():
    """No bin holds half a class's pixels: the loop runs off the end, the last bin is empty -> +inf (every old
    pseudo-label kept); -inf -> the base threshold; 0/0 -> NaN, kept as PLOP's max(tensor, float) keeps it."""
    many = torch.tensor([[300, 300, 300, 0]])   # half 450 > running 6 at the end
    assert plop_find_median(many).tolist() == [math.inf]
    few = torch.tensor([[3, 3, 3, 0]])          # half 4.5 < running 6
    assert plop_find_median(few, base=0.001).tolist() == pytest.approx([0.001])
    tie = torch.tensor([[4, 4, 4, 0]])          # half 6 == running 6
    assert math.isnan(plop_find_median(tie).item())


def test_plop_find_median_bin_index_rounding():
    """PLOP's bin index int(i / nb_bins * nb_bins) is 28 for i = 29 (float rounding): a class whose pixels all lie
    in bin 29 is never found (+inf); in bin 30 it is."""
    row = torch.zeros(2, 100, dtype=torch.int64)
    row[0, 29] = 1_000_000
    row[1, 30] = 1_000_000
    th = plop_find_median(row).tolist()
    assert th[0] == math.inf
    running = float(sum(range(30)))  # bin indices 0..29 added before bin 30 (29 added as 28.999999999999996)
    assert th[1] == pytest.approx(0.30 + (500_000 - running) / 1_000_000 / 100, rel=1e-6)
    with pytest.raises(ValueError, match="int64 histograms"):
        plop_find_median(row.float())


def test_plop_thresholds_hand_checked():
    # 4 background pixels, old model with 2 classes; 3 classes after the task (max entropy log 3)
    logits = torch.tensor([[[[0.0, 10.0, 0.0, 0.0]], [[0.0, 0.0, 10.0, 0.0]]]], dtype=torch.float32)
    bg = torch.tensor([[[True, True, True, False]]])
    th, max_ent = plop_thresholds(logits, bg, n_classes=3, base=0.001, nb_bins=100)
    assert max_ent == pytest.approx(math.log(3))
    p = torch.softmax(logits, dim=1)
    e = _plop_entropy_ref(p.double())[0, 0] / math.log(3)
    # class 0 (argmax bg): pixels 0 (uniform: e = 0.5/log3 = 0.455 -> bin 45; argmax of a tie = 0) and 1
    # (confident: bin 0) -> median: half = 1 lies at the end of bin 0 -> 0 + 1/1/100 = 0.01
    assert int(e[0] * 100) == 45 and int(e[1] * 100) == 0
    assert th[0].item() == pytest.approx(0.01, rel=1e-6)
    # class 1: one confident pixel in bin 0 -> half 0.5 -> 0.5/1/100 = 0.005; pixel 3 is not background
    assert th[1].item() == pytest.approx(0.005, rel=1e-6)
    # base threshold: a class never predicted gets max(0, 0.001)
    th2, _ = plop_thresholds(torch.zeros(1, 3, 1, 1), torch.ones(1, 1, 1, dtype=torch.bool), n_classes=4)
    assert th2.tolist()[1:] == pytest.approx([0.001, 0.001])


def _plop_classif_ref(z, labels, outputs_old, old_classes, thresholds, max_entropy):
    """PLOP train.py Trainer.train, pseudo_labeling == "entropy" + classif_adaptive_factor + CE, transcribed."""
    labels = labels.clone()
    probs = torch.softmax(outputs_old, dim=1)
    max_probs, pseudo_labels = probs.max(dim=1)
    mask_valid_pseudo = (_plop_entropy_ref(probs) / max_entropy) < thresholds[pseudo_labels]
    mask_background = labels < old_classes
    labels[~mask_valid_pseudo & mask_background] = 255
    labels[mask_valid_pseudo & mask_background] = pseudo_labels[mask_valid_pseudo & mask_background]
    num = (mask_valid_pseudo & mask_background).float().sum(dim=(1, 2))
    den = mask_background.float().sum(dim=(1, 2))
    factor = (num / (den + 1e-6))[:, None, None]
    loss = F.cross_entropy(z, labels, ignore_index=255, reduction="none")
    return (factor * loss).mean()


def test_plop_classification_term_hand_checked():
    # 1 image, 1x3 pixels, c_old = 2, one new class (2). Pixel 0: bg, old model sure of class 1 -> label 1;
    # pixel 1: bg, old model unsure -> ignored; pixel 2: new class 2.
    z = torch.tensor([[[[1.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]], [[0.0, 0.0, 2.0]]]], dtype=D)
    y = torch.tensor([[[0, 0, 2]]])
    t = torch.tensor([[[[0.0, 0.0, 0.0]], [[20.0, 0.0, 0.0]]]], dtype=D)
    th = torch.tensor([0.2, 0.2], dtype=D)
    got = plop_pseudo_ce(z, y, t, c_old=2, thresholds=th, max_entropy=math.log(3))
    ce0 = -(0.0 - math.log(math.e + 1 + 1))  # target 1 at pixel 0
    ce2 = -(2.0 - math.log(1 + 1 + math.e ** 2))  # target 2 at pixel 2
    factor = 1 / (2 + 1e-6)  # 1 confident of 2 background pixels
    assert got.item() == pytest.approx(factor * (ce0 + ce2) / 3, rel=1e-6)  # the factor is float32, as in PLOP
    z, t = _rand(3, 5, 4, 4), 3 * _rand(3, 3, 4, 4, seed=1)
    y = torch.randint(0, 2, (3, 4, 4), generator=torch.Generator().manual_seed(2)) * torch.randint(3, 5, (3, 4, 4), generator=torch.Generator().manual_seed(5))
    th = torch.tensor([0.05, 0.1, 0.02], dtype=D)
    ref = _plop_classif_ref(z, y, t, 3, th, math.log(5))
    assert plop_pseudo_ce(z, y, t, c_old=3, thresholds=th, max_entropy=math.log(5)).item() == pytest.approx(ref.item(), rel=1e-12)


def _local_pod_ref(x, spp_scales=(1, 2, 4)):
    """PLOP train.py _local_pod (normalize=False, normalize_per_scale=False), transcribed."""
    b, w = x.shape[0], x.shape[-1]
    emb = []
    for scale in spp_scales:
        k = w // scale
        for i in range(scale):
            for j in range(scale):
                tensor = x[..., i * k:(i + 1) * k, j * k:(j + 1) * k]
                emb.append(tensor.mean(dim=3).view(b, -1))
                emb.append(tensor.mean(dim=2).view(b, -1))
    return torch.cat(emb, dim=1)


def _pod_ref(old, new, index_new_class, nb_current, nb_new):
    """PLOP features_distillation with PLOP's options (local, pow, frobenius, last map = logits with
    extra_channels "sum", factors 0.01 / 0.0005, pod schedule), transcribed."""
    loss = torch.tensor(0.0, dtype=D)
    for i, (a, b) in enumerate(zip(old, new)):
        pod_factor = 0.01
        if i == len(old) - 1:
            pod_factor = 0.0005
            if a.shape[1] != b.shape[1]:
                _b = torch.zeros_like(a)
                _b[:, 0] = b[:, 0] + b[:, index_new_class:].sum(dim=1)
                _b[:, 1:] = b[:, 1:index_new_class]
                b = _b
        a, b = torch.pow(a, 2), torch.pow(b, 2)
        a, b = _local_pod_ref(a), _local_pod_ref(b)
        layer_loss = torch.mean(torch.sqrt(((a - b) ** 2).sum(dim=-1)))
        loss = loss + pod_factor * layer_loss * math.sqrt(nb_current / nb_new)
    return loss / len(old)


def test_local_pod_embedding_hand_checked():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 5.0]]]], dtype=D)
    # scale 1: row means (1.5, 4), column means (2, 3.5); scale 2 (k=1): each pixel, once as a row mean and once as a
    # column mean (PLOP's order interleaves them per region: 1, 1, 2, 2, 3, 3, 5, 5)
    assert local_pod_embedding(x, (1,)).tolist() == [[1.5, 4.0, 2.0, 3.5]]
    assert _local_pod_ref(x, (1,)).tolist() == [[1.5, 4.0, 2.0, 3.5]]
    assert local_pod_embedding(x, (1, 2)).tolist() == [[1.5, 4.0, 2.0, 3.5, 1, 2, 3, 5, 1, 2, 3, 5]]
    assert _local_pod_ref(x, (1, 2)).tolist() == [[1.5, 4.0, 2.0, 3.5, 1, 1, 2, 2, 3, 3, 5, 5]]
    for shape in [(2, 3, 60, 60), (2, 3, 15, 15), (2, 3, 30, 30)]:
        a, b = _rand(*shape, seed=7), _rand(*shape, seed=8)
        ours, ref = local_pod_embedding(a), _local_pod_ref(a)
        assert ours.shape == ref.shape
        assert torch.allclose(ours.sort(dim=1).values, ref.sort(dim=1).values, rtol=1e-12)
        # the loss sees only norms of differences: equal to PLOP's order
        assert torch.allclose(torch.linalg.vector_norm(ours - local_pod_embedding(b), dim=-1),
                              torch.linalg.vector_norm(ref - _local_pod_ref(b), dim=-1), rtol=1e-12)


def test_local_pod_loss_hand_checked_and_vs_transcription():
    # one pair of 1x1x2x2 maps with scales (1,): embeddings of a^2 = [1,1,1,1] vs of 0 -> norm 2
    a = torch.ones(1, 1, 2, 2, dtype=D)
    got = local_pod_loss([a, a], [torch.zeros_like(a), a], c_old=1, n_classes=4, n_new=1, scales=(1,))
    assert got.item() == pytest.approx(0.01 * 2 * math.sqrt(4 / 1) / 2)
    # logits with extra channels: new channel 2 is summed into background before the comparison
    t = _rand(2, 3, 60, 60, seed=2)
    z = torch.cat([t[:, :1] - 1.0, t[:, 1:], torch.ones(2, 1, 60, 60, dtype=D)], dim=1)  # bg + new = old bg
    assert local_pod_loss([t], [z], c_old=3, n_classes=4, n_new=1).item() == pytest.approx(0, abs=1e-12)
    old = [_rand(2, 4, s, s, seed=s) for s in (60, 30, 15, 30, 60)] + [_rand(2, 3, 60, 60, seed=1)]
    new = [_rand(2, 4, s, s, seed=s + 100) for s in (60, 30, 15, 30, 60)] + [_rand(2, 5, 60, 60, seed=2)]
    ref = _pod_ref(old, new, 3, 5, 2)
    assert local_pod_loss(old, new, c_old=3, n_classes=5, n_new=2).item() == pytest.approx(ref.item(), rel=1e-10)
    # the per-pair terms: features weighted by 0.01, the logits (last pair) by 0.0005; their mean is the loss
    terms = local_pod_terms(old, new, c_old=3, n_classes=5, n_new=2)
    assert len(terms) == 6 and torch.equal(sum(terms, torch.zeros((), dtype=D)) / 6,
                                           local_pod_loss(old, new, c_old=3, n_classes=5, n_new=2))
    one = local_pod_terms([a, a], [torch.zeros_like(a), torch.zeros_like(a)], c_old=1, n_classes=4, n_new=1, scales=(1,))
    assert [x.item() for x in one] == pytest.approx([0.01 * 2 * 2, 0.0005 * 2 * 2])


def test_plop_distils_the_stages_before_relu_and_dec2_after():
    """PLOP's maps: the stage outputs before their activation (ResidualBlock ``last=True``) and the head's input
    after it (``x_pl``): enc1..dec1 pre-ReLU, dec2 post-ReLU, then the logits."""
    from cemnist_baselines.losses import local_pod_loss, plop_pseudo_ce
    from cemnist_baselines.methods import PLOP_MAPS

    assert PLOP_MAPS == ("enc1.pre", "enc2.pre", "enc3.pre", "dec1.pre", "dec2")
    old = SimpleSegNet(3, width=4, generator=torch.Generator().manual_seed(1)).eval()
    new = SimpleSegNet(5, width=4, generator=torch.Generator().manual_seed(2)).eval()
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(2, 1, 60, 60, generator=g), torch.randint(0, 5, (2, 60, 60), generator=g)
    state = {"plop.thresholds": torch.full((3,), math.inf), "plop.max_entropy": torch.tensor(math.log(5))}
    with torch.no_grad():
        t, of = old.forward_features(x)
        z, nf = new.forward_features(x)
        got = METHODS["plop"].feature_loss(z, y, t, nf, of, c_old=3, kd_lambda=10.0, state=state)
        cls = plop_pseudo_ce(z, y, t, c_old=3, thresholds=state["plop.thresholds"], max_entropy=math.log(5))

        def pod(names):
            return local_pod_loss([of[n] for n in names] + [t], [nf[n] for n in names] + [z], c_old=3, n_classes=5,
                                  n_new=2)
        assert torch.equal(got, cls + pod(["enc1.pre", "enc2.pre", "enc3.pre", "dec1.pre", "dec2"]))
        assert not torch.allclose(got, cls + pod(["enc1.pre", "enc2.pre", "enc3.pre", "dec1.pre", "dec2.pre"]))


def test_plop_method_constants_and_flags():
    plop = METHODS["plop"]
    assert plop.protocol_values() == {"pod_factor": 0.01, "pod_logits_factor": 0.0005, "threshold": 0.001,
                                      "pod_maps": "enc1.pre,enc2.pre,enc3.pre,dec1.pre,dec2",
                                      "median": "plop_find_median"}
    assert plop.features and plop.old_model_per_batch and plop.balanced_init and plop.uses_old_model
    assert overrides(plop, "before_task") and not overrides(plop, "after_task")


# ----------------------------------------------------------------------------- replay
def test_memory_quotas():
    assert memory_quotas(100, 2) == [50, 50]
    assert memory_quotas(100, 6) == [17, 17, 17, 17, 16, 16]
    assert sum(memory_quotas(100, 8)) == 100
    with pytest.raises(ValueError, match="n_classes must be >= 1"):
        memory_quotas(100, 0)


def _ctx(task, tasks, images, masks, state, seed=0):
    return TaskContext(task=task, tasks=tasks, model=None, old_model=None, images=images, masks=masks,
                       lut=torch.arange(256), c_old=1, seed=seed, device=torch.device("cpu"), cfg=None, state=state)


def _task_data(digits, n, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 4, 4), generator=g, dtype=torch.uint8)
    masks = torch.zeros(n, 4, 4, dtype=torch.uint8)
    which = torch.randint(0, len(digits), (n,), generator=g)
    for i in range(n):
        masks[i, 0, 0] = digits[int(which[i])] + 1
        if i % 5 == 0:  # some images hold both digits of the task
            masks[i, 1, 1] = digits[1 - int(which[i])] + 1
    return images, masks


def test_replay_memory_is_seeded_equal_per_class_and_keeps_task_masks():
    rp = Replay("replay", memory_size=12, per_batch=4)
    assert rp.protocol_values() == {"memory_size": 12, "per_batch": 4}
    tasks = [[0, 1], [2, 3], [4, 5]]
    state: dict[str, torch.Tensor] = {}
    x0, y0 = _task_data([0, 1], 40, 1)
    rp.after_task(_ctx(0, tasks, x0, y0, state))
    d = state["replay.digit"]
    assert d.tolist().count(0) == 6 and d.tolist().count(1) == 6
    for img, msk, dig in zip(state["replay.images"], state["replay.masks"], d):
        i = [k for k in range(40) if torch.equal(x0[k], img)]
        assert len(i) == 1 and torch.equal(y0[i[0]], msk)  # the mask it had in its own task
        assert bool((msk == dig + 1).any())
    assert len({bytes(im.numpy()) for im in state["replay.images"]}) == 12  # no image twice
    first = {k: v.clone() for k, v in state.items()}
    x1, y1 = _task_data([2, 3], 40, 2)
    rp.after_task(_ctx(1, tasks, x1, y1, state))
    assert state["replay.digit"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    # a class keeps the first entries of its ranking when its quota shrinks
    for dig in (0, 1):
        assert torch.equal(state["replay.images"][state["replay.digit"] == dig],
                           first["replay.images"][first["replay.digit"] == dig][:3])
    # same seed -> same memory; another seed -> another one; the global RNG is not used
    again: dict[str, torch.Tensor] = {}
    torch.manual_seed(123)
    rp.after_task(_ctx(0, tasks, x0, y0, again))
    assert all(torch.equal(again[k], first[k]) for k in first)
    other: dict[str, torch.Tensor] = {}
    rp.after_task(_ctx(0, tasks, x0, y0, other, seed=1))
    assert not torch.equal(other["replay.images"], first["replay.images"])


def test_replay_mixes_memory_into_every_batch():
    rp = Replay("replay", memory_size=12, per_batch=4)
    state = {"replay.images": torch.arange(12, dtype=torch.uint8).reshape(12, 1, 1).expand(12, 2, 2).clone(),
             "replay.masks": torch.full((12, 2, 2), 7, dtype=torch.uint8)}
    x, y = torch.full((3, 2, 2), 200, dtype=torch.uint8), torch.zeros(3, 2, 2, dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    x2, y2 = rp.mix_batch(x, y, state=state, generator=g)
    assert x2.shape == (7, 2, 2) and torch.equal(x2[:3], x) and bool((y2[3:] == 7).all())
    assert len(set(x2[3:, 0, 0].tolist())) == 4  # distinct memory images in one batch


def test_method_hooks_default_to_no_ops():
    m = Method("naive")
    y = torch.zeros(1, 2, 2, dtype=torch.int64)
    assert m.targets(y, torch.zeros(1, 1, 2, 2), c_old=1) is y
    x = torch.zeros(1, 2, 2, dtype=torch.uint8)
    assert m.mix_batch(x, x, state={}, generator=torch.Generator()) == (x, x)
    assert not any(overrides(METHODS[n], h) for n in ("naive", "kd", "mib", "joint")
                   for h in ("targets", "mix_batch", "before_task", "after_task", "feature_loss"))


# ----------------------------------------------------------------------------- trainer wiring
def _step_loss(meth, *, teacher: bool):
    from cemnist_baselines.config import get_config
    from cemnist_baselines.model import grow_head
    from cemnist_baselines.data import label_maps
    from cemnist_baselines.optim_step import make_step

    cfg = get_config("tiny", lr=1e-12)
    g = torch.Generator().manual_seed(0)
    old = SimpleSegNet(3, width=4, generator=g)
    with torch.no_grad():
        old.head.bias.copy_(torch.tensor([0.0, 50.0, 0.0]))  # the old model says "class 1" everywhere
    model = SimpleSegNet(3, width=4, generator=torch.Generator().manual_seed(0))
    model.load_state_dict(old.state_dict())
    grow_head(model, 2, generator=torch.Generator().manual_seed(1))
    lut, _ = label_maps([[0, 1], [2, 3]], 1, torch.device("cpu"))
    x = torch.randint(0, 256, (2, 60, 60), generator=g, dtype=torch.uint8)
    y = torch.zeros(2, 60, 60, dtype=torch.uint8)
    y[:, :10, :10] = 3  # digit 2 -> channel 3
    xf = x.unsqueeze(1).float() / 255
    with torch.no_grad():
        z, feats = model.forward_features(xf)
        t, old_feats = old.forward_features(xf)
    fn = meth.feature_loss if meth.features else meth.loss
    step = make_step(model, None if teacher else old, fn, lut, cfg=cfg.replace(channels_last=False), c_old=3,
                     device=torch.device("cpu"), label_fn=meth.targets if overrides(meth, "targets") else None,
                     features=meth.features, state={}, total_steps=1)
    got = step(x, y, t if teacher else None).item()
    return got, z, t, lut[y.long()], feats, old_feats


def test_trainer_applies_the_label_rule_with_and_without_teacher_cache():
    for teacher in (True, False):
        got, z, t, y, _, _ = _step_loss(METHODS["pl"], teacher=teacher)
        want = F.cross_entropy(z, pseudo_label_targets(y, t, c_old=3), ignore_index=255).item()
        assert got == pytest.approx(want, rel=1e-5)
        assert got != pytest.approx(F.cross_entropy(z, y).item(), rel=1e-3)  # the rule changed the targets


def test_trainer_passes_encoder_features_to_ilt():
    got, z, t, y, feats, old_feats = _step_loss(METHODS["ilt"], teacher=False)
    want = METHODS["ilt"].feature_loss(z, y, t, feats, old_feats, c_old=3, kd_lambda=10.0, state={}).item()
    assert got == pytest.approx(want, rel=1e-5)


def test_plop_before_task_hook_computes_thresholds_batch_by_batch():
    from cemnist_baselines.config import get_config
    from cemnist_baselines.model import grow_head
    from cemnist_baselines.data import label_maps

    g = torch.Generator().manual_seed(0)
    old = SimpleSegNet(3, width=4, generator=g).eval()
    model = SimpleSegNet(3, width=4, generator=torch.Generator().manual_seed(0))
    grow_head(model, 2, generator=g)
    images = torch.randint(0, 256, (7, 60, 60), generator=g, dtype=torch.uint8)
    masks = torch.zeros(7, 60, 60, dtype=torch.uint8)
    masks[:, 20:30, 20:30] = 3  # digit 2, not background
    lut, _ = label_maps([[0, 1], [2, 3]], 1, torch.device("cpu"))
    state: dict[str, torch.Tensor] = {}
    ctx = TaskContext(task=1, tasks=[[0, 1], [2, 3]], model=model, old_model=old, images=images, masks=masks, lut=lut,
                      c_old=3, seed=0, device=torch.device("cpu"), cfg=get_config("tiny", eval_batch_size=3),
                      state=state)
    METHODS["plop"].before_task(ctx)
    with torch.no_grad():
        logits = old(images.unsqueeze(1).float() / 255)
    want, max_ent = plop_thresholds(logits, lut[masks.long()] == 0, n_classes=5)
    assert torch.allclose(state["plop.thresholds"], want) and float(state["plop.max_entropy"]) == pytest.approx(max_ent)
    assert max_ent == pytest.approx(math.log(5)) and bool((want >= 0.001).all())

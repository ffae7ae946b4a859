"""Losses against hand-computed values on tiny tensors (the formulas of each method's reference, cited in
``cemnist_baselines.methods``)."""
import math

import pytest
import torch

from cemnist_baselines.losses import ce_loss, mib_kd_loss, tutorial_kd_loss, unbiased_ce_loss, unbiased_kd_loss
from cemnist_baselines.registry import METHODS, get_method


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_ce_hand_computed_with_ignore():
    z = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [3.0, 0.0, 1.0]], dtype=torch.float64)  # 3 pixels, C=3
    z = z.T.reshape(1, 3, 3, 1)  # [B=1, C=3, H=3, W=1]
    y = torch.tensor([[1], [255], [2]]).reshape(1, 3, 1)
    # pixel0 target 1: -(2 - log(e^1+e^2+e^0)); pixel2 target 2: -(1 - log(e^3+e^0+e^1)); pixel1 ignored
    l0 = -(2 - math.log(math.e + math.e**2 + 1))
    l2 = -(1 - math.log(math.e**3 + 1 + math.e))
    assert ce_loss(z, y).item() == pytest.approx((l0 + l2) / 2, rel=1e-12)


def test_mib_kd_hand_computed():
    # one pixel, C_old = 2, new model has 3 channels
    t = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64).reshape(1, 2, 1, 1)  # q = [1/4, 3/4]
    z = torch.tensor([math.log(2.0), 0.0, 5.0], dtype=torch.float64).reshape(1, 3, 1, 1)  # p over first 2 = [2/3, 1/3]
    expected = -(0.25 * math.log(2 / 3) + 0.75 * math.log(1 / 3)) / 2
    assert mib_kd_loss(z, t).item() == pytest.approx(expected, rel=1e-12)


def _softmax(v):
    m = max(v)
    e = [math.exp(x - m) for x in v]
    return [x / sum(e) for x in e]


def _pixels(z, t):
    """Per pixel (b, h, w): the new logits and the old logits as Python lists."""
    b, _, h, w = z.shape
    for i in range(b):
        for r in range(h):
            for c in range(w):
                yield z[i, :, r, c].tolist(), t[i, :, r, c].tolist()


@pytest.mark.parametrize("c_old", [3, 5, 9])
def test_tutorial_kd_hand_computed(c_old):
    """The tutorial's _softXEnt: -(1/(B*H*W)) sum_pixels sum_{c=1..C_old-1} q_c log p_c, p = softmax over the
    first C_old new logits, q = softmax(old logits); the background channel 0 is left out, nothing is averaged over
    channels."""
    z, t = _rand(2, c_old + 2, 2, 3, seed=c_old), _rand(2, c_old, 2, 3, seed=100 + c_old)
    total = 0.0
    for zp, tp in _pixels(z, t):
        q, p = _softmax(tp), _softmax(zp[:c_old])
        total += sum(q[c] * math.log(p[c]) for c in range(1, c_old))
    assert tutorial_kd_loss(z, t).item() == pytest.approx(-total / (2 * 2 * 3), rel=1e-12)


@pytest.mark.parametrize("c_old", [3, 5, 9])
def test_mib_kd_hand_computed_per_c_old(c_old):
    """MiB's KnowledgeDistillationLoss: -(1/(B*H*W)) sum_pixels (1/C_old) sum_{c=0..C_old-1} q_c log p_c."""
    z, t = _rand(2, c_old + 2, 2, 3, seed=c_old), _rand(2, c_old, 2, 3, seed=100 + c_old)
    total = 0.0
    for zp, tp in _pixels(z, t):
        q, p = _softmax(tp), _softmax(zp[:c_old])
        total += sum(q[c] * math.log(p[c]) for c in range(c_old)) / c_old
    assert mib_kd_loss(z, t).item() == pytest.approx(-total / (2 * 2 * 3), rel=1e-12)


def test_tutorial_kd_pushes_background_down_where_mib_kd_is_minimal():
    """At z = t on the old channels MiB's KD is at its minimum (zero gradient); the tutorial's, which leaves the
    background channel out, still lowers the background logit and raises the old digits' (its pull against
    background shift)."""
    t = _rand(2, 3, 4, 4, seed=2)
    z = torch.cat([t, _rand(2, 2, 4, 4, seed=3)], 1).requires_grad_(True)
    (g,) = torch.autograd.grad(tutorial_kd_loss(z, t), z)
    assert bool((g[:, 0] > 0).all())          # gradient descent lowers the background logit
    assert bool((g[:, 1:3] < 0).all())        # and raises the old digits'
    assert float(g[:, 3:].abs().max()) == 0.0  # new channels are not distilled


def test_unce_equals_ce_without_old_classes():
    z, y = _rand(2, 4, 3, 3), torch.randint(0, 4, (2, 3, 3), generator=torch.Generator().manual_seed(1))
    y[0, 0, 0] = 255
    assert unbiased_ce_loss(z, y, c_old=1).item() == pytest.approx(ce_loss(z, y).item(), rel=1e-12)


def test_unce_hand_computed():
    # C = 4 channels, C_old = 2 (bg + one old class), two new classes 2, 3
    zv = [0.5, 1.0, -1.0, 2.0]
    z = torch.tensor(zv, dtype=torch.float64).reshape(1, 4, 1, 1).repeat(1, 1, 1, 3)
    y = torch.tensor([[[1, 3, 255]]])  # old class -> bg; new class 3; ignored
    lse = math.log(sum(math.exp(v) for v in zv))
    logp_bg = math.log(math.exp(0.5) + math.exp(1.0)) - lse
    logp_3 = 2.0 - lse
    assert unbiased_ce_loss(z, y, c_old=2).item() == pytest.approx(-(logp_bg + logp_3) / 2, rel=1e-12)


def test_unkd_hand_computed():
    t = torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64).reshape(1, 3, 1, 1)
    zv = [0.2, 0.7, -0.3, 1.5, 0.1]  # C_old = 3, new channels 3, 4
    z = torch.tensor(zv, dtype=torch.float64).reshape(1, 5, 1, 1)
    q = torch.softmax(t.flatten(), 0).tolist()
    lse = math.log(sum(math.exp(v) for v in zv))
    lbg = math.log(math.exp(0.2) + math.exp(1.5) + math.exp(0.1)) - lse
    expected = -(q[0] * lbg + q[1] * (0.7 - lse) + q[2] * (-0.3 - lse)) / 3
    assert unbiased_kd_loss(z, t).item() == pytest.approx(expected, rel=1e-12)


def _grad_and_perturbed(loss_fn, z, t):
    z = z.clone().requires_grad_(True)
    loss = loss_fn(z, t)
    (g,) = torch.autograd.grad(loss, z)
    worse = [loss_fn(z.detach() + 0.1 * _rand(*z.shape, seed=s), t).item() for s in range(5)]
    return loss.item(), g, worse


def test_mib_kd_minimal_when_new_equals_old_on_old_channels():
    t = _rand(2, 3, 4, 4, seed=2)
    z = torch.cat([t, _rand(2, 2, 4, 4, seed=3)], 1)  # new channels arbitrary: KD ignores them
    loss, g, worse = _grad_and_perturbed(mib_kd_loss, z, t)
    assert g.abs().max().item() < 1e-12
    assert all(w > loss for w in worse)


def test_unkd_minimal_when_new_model_matches_old():
    t = _rand(2, 3, 4, 4, seed=4)
    z = torch.cat([t, torch.full((2, 2, 4, 4), -1e3, dtype=torch.float64)], 1)  # new classes get no mass
    loss, g, worse = _grad_and_perturbed(unbiased_kd_loss, z, t)
    assert g[:, :3].abs().max().item() < 1e-12
    assert all(w > loss for w in worse)
    # minimum = entropy(q) / C_old
    q = torch.softmax(t, 1)
    assert loss == pytest.approx((-(q * q.log()).sum(1).mean() / 3).item(), rel=1e-10)


def test_unkd_minimal_after_balanced_split_of_background():
    # MiB's balanced init splits the old bg logit into N+1 equal parts: z_bg = z_new = t_bg - log(N+1)
    t = _rand(1, 3, 2, 2, seed=5)
    n_new = 2
    bg = t[:, :1] - math.log(n_new + 1)
    z = torch.cat([bg, t[:, 1:], bg.expand(-1, n_new, -1, -1)], 1)
    loss, g, _ = _grad_and_perturbed(unbiased_kd_loss, z, t)
    assert g.abs().max().item() < 1e-12


def test_method_registry_and_errors():
    assert set(METHODS) == {"naive", "kd", "lwf", "mib", "joint", "ilt", "pl", "plop", "plop_tuned", "replay"}
    with pytest.raises(ValueError, match="unknown method 'ewc'.*joint"):
        get_method("ewc")
    z, y, t = _rand(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long), _rand(1, 2, 2, 2, seed=9)
    assert METHODS["naive"].loss(z, y, None, c_old=2, kd_lambda=10).item() == pytest.approx(ce_loss(z, y).item())
    assert METHODS["kd"].loss(z, y, t, c_old=2, kd_lambda=10).item() == pytest.approx(
        (ce_loss(z, y) + 10 * tutorial_kd_loss(z, t)).item())
    # lwf: MiB's weight 100 whatever the protocol's lambda (recorded as a protocol value)
    for lam in (10, 3):
        assert METHODS["lwf"].loss(z, y, t, c_old=2, kd_lambda=lam).item() == pytest.approx(
            (ce_loss(z, y) + 100 * mib_kd_loss(z, t)).item())
    assert METHODS["lwf"].protocol_values() == {"kd_weight": 100.0}
    assert METHODS["kd"].protocol_values() == {"kd_formula": "tutorial"}
    assert METHODS["mib"].loss(z, y, t, c_old=2, kd_lambda=10).item() == pytest.approx(
        (unbiased_ce_loss(z, y, 2) + 10 * unbiased_kd_loss(z, t)).item())

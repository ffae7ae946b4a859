"""SimpleSegNet (cemnist_baselines/model.py): its size, seeded init and head growth (README, "Baselines")."""
import math

import pytest
import torch

from cemnist_baselines.model import SimpleSegNet, count_parameters, grow_head


def _g(s):
    return torch.Generator().manual_seed(s)


def test_parameter_count_and_shape():
    m = SimpleSegNet(11, generator=_g(0))
    assert count_parameters(m) == 83915
    assert m(torch.zeros(2, 1, 60, 60)).shape == (2, 11, 60, 60)
    assert count_parameters(SimpleSegNet(3, generator=_g(0))) == 83915 - 8 * 33


def test_init_is_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b, c = SimpleSegNet(3, generator=_g(1)), SimpleSegNet(3, generator=_g(1)), SimpleSegNet(3, generator=_g(2))
    assert torch.equal(torch.random.get_rng_state(), state)
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.enc1[0].weight, c.enc1[0].weight)


@pytest.mark.parametrize("balanced", [False, True])
def test_head_growth_copies_old_rows_exactly(balanced):
    m = SimpleSegNet(3, generator=_g(0))
    w, b = m.head.weight.detach().clone(), m.head.bias.detach().clone()
    body = {k: v.clone() for k, v in m.state_dict().items() if not k.startswith("head")}
    grow_head(m, 2, generator=_g(7), balanced=balanced)
    assert m.head.weight.shape == (5, 32, 1, 1) and m.num_classes == 5
    assert torch.equal(m.head.weight[:3], w)
    assert torch.equal(m.head.bias[1:3], b[1:3])
    if balanced:
        assert m.head.bias[0].item() == pytest.approx(b[0].item() - math.log(3), abs=1e-6)
    else:
        assert torch.equal(m.head.bias[:3], b)
        assert not torch.equal(m.head.weight[3], m.head.weight[4])
    for k, v in m.state_dict().items():
        if not k.startswith("head"):
            assert torch.equal(v, body[k])


def test_balanced_init_splits_old_background_probability_equally():
    m = SimpleSegNet(3, generator=_g(0))
    x = torch.rand(2, 1, 60, 60, generator=_g(3))
    with torch.no_grad():
        p_old = torch.softmax(m(x).double(), 1)
        grow_head(m, 2, generator=_g(7), balanced=True)
        p_new = torch.softmax(m(x).double(), 1)
    for c in (0, 3, 4):
        torch.testing.assert_close(p_new[:, c], p_old[:, 0] / 3, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(p_new[:, 1:3], p_old[:, 1:3], rtol=1e-5, atol=1e-7)


def test_default_growth_is_seeded():
    a, b = SimpleSegNet(3, generator=_g(0)), SimpleSegNet(3, generator=_g(0))
    grow_head(a, 2, generator=_g(5))
    grow_head(b, 2, generator=_g(5))
    assert torch.equal(a.head.weight, b.head.weight) and torch.equal(a.head.bias, b.head.bias)


def test_label_to_channel_maps_follow_the_class_order():
    from cemnist_baselines.data import label_maps

    lut, ch2lab = label_maps([[3, 1], [0, 2], [4, 5]], 1, torch.device("cpu"))
    assert ch2lab.tolist() == [0, 4, 2, 1, 3]
    assert lut[[0, 4, 2, 1, 3]].tolist() == [0, 1, 2, 3, 4]
    assert lut[[5, 6, 10, 255]].tolist() == [255] * 4  # unseen digits and 255 are ignored
    assert torch.equal(lut[ch2lab], torch.arange(5))

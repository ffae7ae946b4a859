"""torch.compile path of the step (opt-in, --compile) exercised on CPU: same losses as eager (slow: ~1 min)."""
import copy

import pytest
import torch

from cemnist_baselines.config import get_config
from cemnist_baselines.registry import METHODS
from cemnist_baselines.model import SimpleSegNet, grow_head
from cemnist_baselines.data import label_maps
from cemnist_baselines.optim_step import make_step, train_epoch


@pytest.mark.slow
def test_compiled_step_matches_eager_on_cpu():
    dev = torch.device("cpu")
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (40, 60, 60), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 5, (40, 60, 60), dtype=torch.uint8, generator=g)
    lut, _ = label_maps([[0, 1], [2, 3]], 1, dev)
    losses = {}
    for comp in (False, True):
        m = SimpleSegNet(3, generator=torch.Generator().manual_seed(0))
        old = copy.deepcopy(m).eval().requires_grad_(False)
        grow_head(m, 2, generator=torch.Generator().manual_seed(1), balanced=True)
        cfg = get_config("default", compile=comp, batch_size=16).resolved("cpu")
        step = make_step(m, old, METHODS["mib"].loss, lut, cfg=cfg, c_old=3, device=dev, total_steps=3)
        losses[comp] = train_epoch(step, x, y, batch_size=16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(losses[True], losses[False], rtol=1e-4, atol=1e-4)

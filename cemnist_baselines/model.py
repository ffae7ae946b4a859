"""SimpleSegNet (the seed tutorial's segmenter) with a growable 1x1 head; seeded init, no global RNG."""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F


def _init_conv_(conv: nn.Conv2d, generator: torch.Generator) -> None:
    """PyTorch's default Conv2d init (kaiming_uniform a=sqrt(5), uniform bias), from ``generator``."""
    with torch.no_grad():
        nn.init.kaiming_uniform_(conv.weight, a=math.sqrt(5), generator=generator)
        if conv.bias is not None:
            fan_in = conv.weight.shape[1] * conv.weight.shape[2] * conv.weight.shape[3]
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(conv.bias, -bound, bound, generator=generator)


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    # skip_init: build without touching the global RNG; weights are set by _init_conv_.
    return torch.nn.utils.skip_init(nn.Conv2d, cin, cout, k, padding=k // 2)


SEGNET_BLOCKS = ("enc1", "enc2", "enc3", "dec1", "dec2")
"""The blocks of :class:`SimpleSegNet`, in order (the names of :meth:`SimpleSegNet.forward_features`' maps)."""


class SimpleSegNet(nn.Module):
    """Encoder [c,c,pool][c,c,pool][c,c]; decoder [up2,c,c]x2; 1x1 head to ``num_classes`` channels.

    ReLU after every 3x3 conv, no normalisation. Input: float image/255, shape [B, 1, 60, 60].
    """

    def __init__(self, num_classes: int, *, width: int = 32, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        w = width
        self.width = w
        self.enc1 = nn.ModuleList([_conv(1, w), _conv(w, w)])
        self.enc2 = nn.ModuleList([_conv(w, w), _conv(w, w)])
        self.enc3 = nn.ModuleList([_conv(w, w), _conv(w, w)])
        self.dec1 = nn.ModuleList([_conv(w, w), _conv(w, w)])
        self.dec2 = nn.ModuleList([_conv(w, w), _conv(w, w)])
        self.head = _conv(w, num_classes, k=1)
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                _init_conv_(m, g)

    @property
    def num_classes(self) -> int:
        return self.head.out_channels

    @staticmethod
    def _block(convs: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        for c in convs:
            x = F.relu(c(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._block(self.enc1, x)
        x = F.max_pool2d(x, 2)
        x = self._block(self.enc2, x)
        x = F.max_pool2d(x, 2)
        x = self._block(self.enc3, x)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self._block(self.dec1, x)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self._block(self.dec2, x)
        return self.head(x)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:meth:`forward` with its intermediate maps: (logits, features).

        ``features[b]`` is block ``b``'s output (after its last ReLU) and ``features[b + ".pre"]`` the same before
        that ReLU, for b in enc1 (60x60), enc2 (30x30), enc3 (15x15, the encoder output), dec1 (30x30),
        dec2 (60x60). The logits are bit-identical to ``self(x)`` (same ops in the same order)."""
        feats: dict[str, torch.Tensor] = {}
        h = x
        for b in SEGNET_BLOCKS:
            if b in ("enc2", "enc3"):
                h = F.max_pool2d(h, 2)
            elif b in ("dec1", "dec2"):
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            convs = getattr(self, b)
            for c in convs[:-1]:
                h = F.relu(c(h))
            pre = convs[-1](h)
            h = F.relu(pre)
            feats[b + ".pre"] = pre
            feats[b] = h
        return self.head(h), feats


def grow_head(model: SimpleSegNet, num_new: int, *, generator: torch.Generator, balanced: bool = False) -> None:
    """Append ``num_new`` output channels in place; old rows are copied exactly.

    New rows get PyTorch's default init from ``generator``; with ``balanced=True`` MiB's init is
    applied instead: new weights <- background weights, new biases and the background bias <-
    b_bg - log(num_new + 1), so the old background probability is split equally.
    """
    if num_new < 0:
        raise ValueError(f"num_new must be >= 0, got {num_new}")
    if num_new == 0:
        return
    old = model.head
    c_old = old.out_channels
    new = _conv(old.in_channels, c_old + num_new, k=1).to(device=old.weight.device, dtype=old.weight.dtype)
    fresh = _conv(old.in_channels, num_new, k=1)
    _init_conv_(fresh, generator)
    with torch.no_grad():
        new.weight[:c_old].copy_(old.weight)
        new.bias[:c_old].copy_(old.bias)
        if balanced:
            shift = math.log(num_new + 1)
            new.weight[c_old:].copy_(old.weight[0:1].expand(num_new, -1, -1, -1))
            new.bias[c_old:].fill_(float(old.bias[0]) - shift)
            new.bias[0] = old.bias[0] - shift
        else:
            new.weight[c_old:].copy_(fresh.weight.to(new.weight.device))
            new.bias[c_old:].copy_(fresh.bias.to(new.bias.device))
    model.head = new


def count_parameters(model: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())

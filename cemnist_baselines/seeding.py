"""Seeds without the global RNG: every random draw of a run (init, head growth, shuffling, replay) comes from
its own generator, derived from the run seed and a purpose, so a resumed run replays exactly."""
from __future__ import annotations

import hashlib
from typing import Any

import torch


def check_seed(seed: Any) -> int:
    """``seed`` itself when it is a non-negative Python int below 2**63 (a run seed); else a ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    return seed


def derive_seed(seed: int, *parts: Any) -> int:
    """Independent 63-bit seed for (seed, purpose, task...)."""
    h = hashlib.sha256("/".join(map(str, (seed,) + parts)).encode()).digest()
    return int.from_bytes(h[:8], "little") & (2**63 - 1)


def make_generator(seed: int, device: torch.device, *parts: Any) -> torch.Generator:
    """A generator on ``device`` seeded with :func:`derive_seed` ``(seed, *parts)``. The trainer draws every
    permutation from CPU generators (the same numbers on every device); CUDA's ``randperm`` is another
    algorithm than the CPU's."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *parts))
    return g

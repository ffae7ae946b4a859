"""Which torch device a run uses: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, checked against this machine
before anything starts (the CUDA backend flags a run then sets are :mod:`cemnist_baselines.backends`)."""
from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` without CUDA is a RuntimeError; ``cuda:N`` with N not a
    device of this machine is a ValueError naming the devices there are."""
    d = str(device)
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(d)  # RuntimeError for malformed strings
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"--device {d} was requested but CUDA is not available (torch {torch.__version__}, "
            f"built with CUDA {torch.version.cuda}); use --device cpu or --device auto"
        )
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {d!r}: use auto, cpu or cuda[:N]")
    if dev.type == "cuda" and dev.index is not None:
        n = torch.cuda.device_count()
        if not 0 <= dev.index < n:
            names = ", ".join(f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(n))
            raise ValueError(f"--device {d}: CUDA device index must be in [0, {n - 1}] on this machine, got "
                             f"{dev.index}; its {n} device(s): {names or 'none'}")
    return dev

"""Counter-based random numbers: every draw is a pure function of (key, counters).

CEMNIST never uses a stateful or global random generator. Each random value is a 64-bit hash of a
stream key and integer counters (image index, attempt, field, slot, try), computed with the
SplitMix64 finaliser on NumPy ``uint64`` arrays. An image therefore depends only on the spec and its
own index, never on how images are batched, chunked or spread over processes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mix64", "hash_counters", "uniform_int", "stream_key"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_MASK32 = np.uint64(0xFFFFFFFF)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (a bijection on uint64 with good avalanche), element-wise."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (x ^ (x >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def hash_counters(key: int, *counters: np.ndarray | int) -> np.ndarray:
    """Hash a stream key and any number of integer counters (broadcast together) to uint64."""
    h = np.asarray(np.uint64(key))
    with np.errstate(over="ignore"):
        for c in counters:
            h = mix64(h + _GOLDEN * (np.asarray(c).astype(np.uint64) + np.uint64(1)))
    return h


def uniform_int(h: np.ndarray, n: np.ndarray | int, *, high_bits: bool = False) -> np.ndarray:
    """Map 32 bits of a hash to an integer in ``[0, n)`` by multiply-shift (Lemire's method).

    ``high_bits`` selects the upper 32 bits so one hash can feed two independent draws. The bias is
    at most ``n / 2**32`` (below 1e-5 for every ``n`` used here).
    """
    bits = (h >> _S32) if high_bits else (h & _MASK32)
    return ((bits * np.asarray(n, dtype=np.uint64)) >> _S32).astype(np.int64)


def stream_key(seed: int, *labels: int) -> int:
    """Derive the integer key of one named stream (e.g. mode, split, task) from the spec seed."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(hash_counters(seed & 0xFFFFFFFFFFFFFFFF, *[np.int64(v) for v in labels]))

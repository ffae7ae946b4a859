"""The process-wide CUDA backend flags a run sets: IEEE float32 (no TF32), cuDNN benchmarking, determinism.

torch's defaults let cuDNN run float32 convolutions in TF32 (a 10-bit mantissa) on Ampere and later GPUs, so
without this a GPU run recorded as precision ``fp32`` would be TF32. Every CUDA run therefore sets IEEE float32
for cuDNN convolutions and CUDA matmuls (bf16 runs too: what autocast leaves in float32 stays IEEE), cuDNN
benchmarking as its config says, and with ``deterministic`` cuDNN's deterministic algorithms and
``torch.use_deterministic_algorithms(True, warn_only=True)``. CPU runs change nothing here.

The flags are global to a process: :func:`backend_settings` sets them for one run and restores them after;
:func:`apply_backend_settings` only sets them (for scripts that call :func:`~cemnist_baselines.optim_step.make_step`
directly). :func:`backend_record` is what a result's ``env`` records of them.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import torch

CUBLAS_WORKSPACE = ":4096:8"
"""``CUBLAS_WORKSPACE_CONFIG`` set (unless already set) by a deterministic CUDA run: cuBLAS is deterministic only
with it, and reads it when the process first uses cuBLAS."""


def _new_api() -> bool:
    """Whether this torch has the per-backend ``fp32_precision`` flags (torch >= 2.9); else only the legacy ones."""
    cudnn = torch.backends.cudnn
    return (hasattr(cudnn, "conv") and hasattr(cudnn.conv, "fp32_precision") and hasattr(cudnn, "rnn")
            and hasattr(torch.backends.cuda.matmul, "fp32_precision"))


def _resolve(*values: str) -> str:
    """torch's resolution of a precision flag: the first value that is not ``"none"`` from the op's flag up to
    the generic one (CUDA's ``"all"`` flag is ``torch.backends.cudnn.fp32_precision``); ``"none"`` all the way
    means IEEE (anything but ``"tf32"`` is)."""
    v = next((x for x in values if x != "none"), "ieee")
    return "tf32" if v == "tf32" else "ieee"


def cudnn_conv_fp32() -> str:
    """``"tf32"`` or ``"ieee"``: how cuDNN computes float32 convolutions under the current flags."""
    if _new_api():
        b = torch.backends
        return _resolve(b.cudnn.conv.fp32_precision, b.cudnn.fp32_precision, b.fp32_precision)
    return "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"


def cuda_matmul_fp32() -> str:
    """``"tf32"`` or ``"ieee"``: how cuBLAS computes float32 matmuls under the current flags."""
    if _new_api():
        b = torch.backends
        return _resolve(b.cuda.matmul.fp32_precision, b.cudnn.fp32_precision, b.fp32_precision)
    return "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"


def _matmul_precision() -> str | None:
    """``torch.get_float32_matmul_precision()``, or None when torch refuses to tell (legacy and new API mixed)."""
    try:
        return torch.get_float32_matmul_precision()
    except RuntimeError:
        return None


def backend_record() -> dict[str, Any]:
    """The flags as a result's ``env`` records them (JSON-able): float32 precision of cuDNN convolutions and
    CUDA matmuls (``"ieee"`` / ``"tf32"``), cuDNN benchmarking and determinism, deterministic algorithms."""
    conv = cudnn_conv_fp32()
    return {"cudnn_allow_tf32": conv == "tf32", "matmul_precision": _matmul_precision(),
            "cuda_conv_fp32": conv, "cuda_matmul_fp32": cuda_matmul_fp32(),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
            "deterministic_warn_only": bool(torch.is_deterministic_algorithms_warn_only_enabled())}


def _snapshot() -> dict[str, Any]:
    """Everything :func:`apply_backend_settings` may change, for :func:`_restore`."""
    s: dict[str, Any] = {"benchmark": torch.backends.cudnn.benchmark, "cudnn_det": torch.backends.cudnn.deterministic,
                         "det": torch.are_deterministic_algorithms_enabled(),
                         "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
                         "matmul_precision": _matmul_precision()}
    try:
        s["cudnn_tf32"] = torch.backends.cudnn.allow_tf32
    except RuntimeError:  # legacy and new API mixed before us: restore the new API's flags only
        s["cudnn_tf32"] = None
    if _new_api():
        b = torch.backends
        s["conv"], s["rnn"] = b.cudnn.conv.fp32_precision, b.cudnn.rnn.fp32_precision
        s["cuda_matmul"] = b.cuda.matmul.fp32_precision
        s["mkldnn_matmul"] = b.mkldnn.matmul.fp32_precision if hasattr(b.mkldnn, "matmul") else None
    return s


def _restore(s: dict[str, Any]) -> None:
    torch.backends.cudnn.benchmark = s["benchmark"]
    torch.backends.cudnn.deterministic = s["cudnn_det"]
    torch.use_deterministic_algorithms(s["det"], warn_only=s["warn_only"])
    if s["cudnn_tf32"] is not None:  # the legacy setters first: they overwrite the new API's flags
        torch.backends.cudnn.allow_tf32 = s["cudnn_tf32"]
    if s["matmul_precision"] is not None:
        torch.set_float32_matmul_precision(s["matmul_precision"])
    if "conv" in s:
        b = torch.backends
        b.cudnn.conv.fp32_precision, b.cudnn.rnn.fp32_precision = s["conv"], s["rnn"]
        b.cuda.matmul.fp32_precision = s["cuda_matmul"]
        if s["mkldnn_matmul"] is not None:
            b.mkldnn.matmul.fp32_precision = s["mkldnn_matmul"]


def apply_backend_settings(cfg: Any, device: torch.device) -> None:
    """Set the CUDA flags of a run with the (resolved) config ``cfg`` on ``device``; nothing on other devices.

    IEEE float32 for cuDNN convolutions and CUDA matmuls (the legacy flags and, where torch has them, the
    per-backend ``fp32_precision`` flags, so both APIs read consistently); ``cudnn.benchmark`` =
    ``cfg.cudnn_benchmark``; ``cudnn.deterministic`` and ``torch.use_deterministic_algorithms(...,
    warn_only=True)`` = ``cfg.deterministic`` (ops without a deterministic CUDA kernel warn: NLL loss's forward,
    whose value is only logged). A deterministic run also sets ``CUBLAS_WORKSPACE_CONFIG`` unless it is set."""
    if device.type != "cuda":
        return
    det = bool(getattr(cfg, "deterministic", False))
    torch.backends.cudnn.benchmark = bool(cfg.cudnn_benchmark) and not det
    torch.backends.cudnn.deterministic = det
    torch.use_deterministic_algorithms(det, warn_only=True)
    if det:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.allow_tf32 = False           # legacy: sets the conv/rnn flags to "none" too
    torch.set_float32_matmul_precision("highest")      # legacy and new flags of matmuls: IEEE
    if _new_api():
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.backends.cudnn.rnn.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"


@contextlib.contextmanager
def backend_settings(cfg: Any, device: torch.device) -> Iterator[None]:
    """:func:`apply_backend_settings` for the duration of a ``with`` block; the previous flags come back after."""
    if device.type != "cuda":
        yield
        return
    saved = _snapshot()
    try:
        apply_backend_settings(cfg, device)
        yield
    finally:
        _restore(saved)

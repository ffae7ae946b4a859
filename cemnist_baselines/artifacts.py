"""Files written by the baselines, all atomic: safetensors files with a content hash (no pickle), JSON text;
and the machine a run ran on (``env_info``). Checkpoints are :mod:`.checkpoints`'."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from cemnist_data.fileio import atomic_path
from cemnist_data.fileio import atomic_write_text as _atomic_write_text

from .errors import WriteError

HASH_KEY = "sha256"
"""Metadata entry holding :func:`content_sha256`: the tensors and every other metadata entry."""

_WRITE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file-size limit was reached (ulimit -f)",
                 errno.EDQUOT: "the disk quota is exhausted"}


def write_error(path: str | os.PathLike[str], e: BaseException) -> WriteError:
    """A :class:`WriteError` naming ``path``, what ran out and the fix, for the error ``e`` of a failed write."""
    code = getattr(e, "errno", None)
    if code is None:  # safetensors reports I/O errors as SafetensorError("... (os error N)")
        m = re.search(r"os error (\d+)", str(e))
        code = int(m.group(1)) if m else None
    why = _WRITE_ERRNOS.get(code) if code is not None else None
    reason = why or f"{type(e).__name__}: {e}"
    err = WriteError(f"cannot write {path}: {reason}; free space (or raise the limit) or choose another --out, "
                     f"then rerun with --resume to continue from the last finished task")
    err.errno = code
    return err


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`cemnist_data.fileio.atomic_write_text`; a full disk or file-size limit is a :class:`WriteError`
    naming ``path``."""
    try:
        return _atomic_write_text(path, text)
    except OSError as e:
        if e.errno not in _WRITE_ERRNOS:  # not a space problem: the original error
            raise
        raise write_error(path, e) from e


def atomic_save_safetensors(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """``safetensors.torch.save_file`` to a temp file, then ``os.replace``; the metadata gets the tensors'
    ``content_sha256`` and :data:`HASH_KEY`, the hash of the tensors and every other metadata entry (both
    checked by :func:`read_safetensors`). A full disk or file-size limit is a :class:`WriteError` naming
    ``path``."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = dict(metadata)
    meta["content_sha256"] = tensors_sha256(cpu)
    meta[HASH_KEY] = content_sha256(cpu, meta)
    try:
        with atomic_path(path) as tmp:
            save_file(cpu, str(tmp), metadata=meta)
    except (OSError, SafetensorError) as e:
        werr = write_error(path, e)
        if werr.errno not in _WRITE_ERRNOS:  # not a space problem: the original error
            raise
        raise werr from e


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors`` (sorted by name)."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().to("cpu").contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def content_sha256(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """SHA-256 of a safetensors file's whole content: :func:`tensors_sha256` and a canonical JSON (sorted keys)
    of every metadata entry but :data:`HASH_KEY` itself. Editing one byte of the tensors or the metadata
    (a checkpoint's ``progress``) changes it."""
    meta = {k: v for k, v in metadata.items() if k != HASH_KEY}
    h = hashlib.sha256()
    h.update(tensors_sha256(tensors).encode() + b"\n")
    h.update(json.dumps(meta, sort_keys=True, ensure_ascii=True).encode())
    return h.hexdigest()


def read_safetensors(path: str | os.PathLike[str], *, what: str = "file",
                     require_hash: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors on CPU, metadata). An unreadable, truncated or empty file is a ValueError naming it. A file with
    :data:`HASH_KEY` in its metadata is checked against its tensors and metadata; one with only the older
    ``content_sha256`` (traces committed before, e.g. in ``results/v1``) against its tensors. ``require_hash``:
    a file without :data:`HASH_KEY` is a ValueError (checkpoints)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise
    except Exception as e:  # SafetensorError, OSError: damaged header or data
        raise ValueError(f"{path}: damaged or truncated {what} ({type(e).__name__}: {e}); delete it and rerun "
                         f"(a run without --resume recomputes it)") from e
    changed = ValueError(f"{path}: {what} content does not match its recorded SHA-256 (the file was changed or "
                         f"damaged after it was written); delete it and rerun")
    if HASH_KEY in meta:
        if content_sha256(tensors, meta) != meta[HASH_KEY]:
            raise changed
    elif require_hash:
        raise ValueError(f"{path}: {what} has no {HASH_KEY!r} over its tensors and metadata (written before "
                         f"checkpoints hashed their metadata, or the entry was removed), so it cannot be "
                         f"trusted; delete it and rerun without --resume (a run recomputes it)")
    want = meta.get("content_sha256")
    if want is not None and tensors_sha256(tensors) != want:
        raise changed
    return tensors, meta


def git_commit() -> str | None:
    """HEAD of the repository holding this package (``-dirty`` appended when tracked files differ from it);
    else ``$CEMNIST_GIT_COMMIT`` (set by scripts that run an installed wheel built from a known commit, e.g.
    ``bench/gpu/session.sh``); else None."""
    here = Path(__file__).resolve().parent
    try:
        run = dict(cwd=here, capture_output=True, text=True, timeout=5, check=True)
        sha = subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()
        if sha and subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run).stdout.strip():
            sha += "-dirty"
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        sha = ""
    return sha or os.environ.get("CEMNIST_GIT_COMMIT") or None


KERNEL_ISA_FLAGS = ("amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f", "avx_vnni",
                    "avx2", "fma")
"""CPU flags (``/proc/cpuinfo`` names) that decide which fp32/bf16 kernels oneDNN and ATen pick."""

_ONEDNN_LEVELS = (("avx512_core_amx", ("amx_tile", "amx_bf16", "amx_int8")), ("avx512_core_bf16", ("avx512_bf16",)),
                  ("avx512_core_vnni", ("avx512_vnni",)), ("avx512_core", ("avx512f",)),
                  ("avx2_vnni", ("avx_vnni", "avx2")), ("avx2", ("avx2",)))


def cpu_info(*, cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> dict[str, Any]:
    """The CPU that decides a CPU run's bits: model name, the kernel-choosing ISA flags it has
    (:data:`KERNEL_ISA_FLAGS`), ATen's CPU capability and the oneDNN ISA those flags select (oneDNN takes the
    highest level the CPU has unless ``ONEDNN_MAX_CPU_ISA`` caps it; that variable is recorded too). ``cpuinfo``:
    the file to read (Linux's; elsewhere the model comes from :mod:`platform` and the flags are None)."""
    model, flags = "", set()
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: the model from platform, flags unknown
        text = ""
    for line in text.splitlines():
        key, _, val = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = val.strip()
        elif key == "flags" and not flags:
            flags = set(val.split())
    onednn = next((name for name, need in _ONEDNN_LEVELS if all(f in flags for f in need)), None) if flags else None
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: None)()
    return {"cpu_model": model or platform.processor() or platform.machine() or "unknown",
            "cpu_isa": [f for f in KERNEL_ISA_FLAGS if f in flags] if flags else None,
            "aten_cpu_capability": capability, "onednn_isa": onednn,
            "onednn_max_cpu_isa_env": os.environ.get("ONEDNN_MAX_CPU_ISA")}


def env_info(device: torch.device) -> dict[str, Any]:
    """torch / CUDA versions, the device, and what decides its bits: on a CPU :func:`cpu_info` (``device_name``
    is the CPU model); on a GPU its name, compute capability and cuDNN version, plus the host CPU; and the
    backend flags in force (:func:`cemnist_baselines.backends.backend_record`: float32 precision of cuDNN
    convolutions and CUDA matmuls, cuDNN benchmarking and determinism)."""
    out: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": device.type}
    cpu = cpu_info()
    if device.type == "cuda":
        out["device_name"] = torch.cuda.get_device_name(device)
        out["gpu_capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))
        out["cudnn"] = torch.backends.cudnn.version()
    else:
        out["device_name"] = cpu["cpu_model"]
    from .backends import backend_record

    out.update({"num_threads": torch.get_num_threads(), **backend_record(), **cpu})
    return out


MACHINE_KEYS = ("device", "device_name", "gpu_capability", "cudnn", "cpu_model", "cpu_isa", "onednn_isa",
                "onednn_max_cpu_isa_env", "aten_cpu_capability", "torch", "num_threads")
"""The ``env`` entries that must agree for two runs to be bit-identical (the same machine kind)."""


def same_machine_kind(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
    """Whether two results' ``env`` name the same kind of machine (every :data:`MACHINE_KEYS` entry equal):
    True or False; None when either predates these records (no ``cpu_model``), so it cannot be told."""
    if "cpu_model" not in a or "cpu_model" not in b:
        return None
    return all(a.get(k) == b.get(k) for k in MACHINE_KEYS)


def machine_label(env: dict[str, Any]) -> str:
    """One line naming the machine kind of a result's ``env``: ``"AMD EPYC (avx512_core_bf16)"``, a GPU's
    ``"NVIDIA H100 (sm 9.0, cuDNN 91002)"``, or ``"unrecorded (x86_64)"`` for results from before ``env`` named
    the CPU."""
    if env.get("device") == "cuda":
        return f"{env.get('device_name')} (sm {env.get('gpu_capability')}, cuDNN {env.get('cudnn')})"
    if "cpu_model" not in env:
        return f"unrecorded ({env.get('device_name') or env.get('device')})"
    return f"{env['cpu_model']} ({env.get('onednn_isa') or 'ISA unknown'})"

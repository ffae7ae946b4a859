"""Files written by the baselines: safetensors checkpoints (no pickle), result JSONs, traces; all atomic."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from cemnist_data.fileio import atomic_path, atomic_write_text  # noqa: F401  (atomic_write_text re-exported)

CKPT_FORMAT = "cemnist-baselines-ckpt/2"


def atomic_save_safetensors(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """``safetensors.torch.save_file`` to a temp file, then ``os.replace``; the metadata gets the tensors'
    ``content_sha256`` (checked by :func:`read_safetensors`)."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = dict(metadata)
    meta["content_sha256"] = tensors_sha256(cpu)
    with atomic_path(path) as tmp:
        save_file(cpu, str(tmp), metadata=meta)


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors`` (sorted by name)."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().to("cpu").contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def read_safetensors(path: str | os.PathLike[str], *, what: str = "file") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors on CPU, metadata). An unreadable, truncated or empty file is a ValueError naming it; a file
    with a ``content_sha256`` in its metadata is checked against its tensors."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise
    except Exception as e:  # SafetensorError, OSError: damaged header or data
        raise ValueError(f"{path}: damaged or truncated {what} ({type(e).__name__}: {e}); delete it and rerun "
                         f"(a run without --resume recomputes it)") from e
    want = meta.get("content_sha256")
    if want is not None and tensors_sha256(tensors) != want:
        raise ValueError(f"{path}: {what} content does not match its recorded SHA-256 (the file was changed or "
                         f"damaged after it was written); delete it and rerun")
    return tensors, meta


def save_checkpoint(path: Path, *, model_state: dict[str, torch.Tensor], extra: dict[str, torch.Tensor],
                    config: dict[str, Any], progress: dict[str, Any]) -> None:
    """Model weights as ``model.*`` tensors, extra tensors as ``extra.*``; config/progress JSON in metadata."""
    tensors = {f"model.{k}": v for k, v in model_state.items()}
    tensors.update({f"extra.{k}": v for k, v in extra.items()})
    meta = {"format": CKPT_FORMAT, "config": json.dumps(config, sort_keys=True), "progress": json.dumps(progress)}
    atomic_save_safetensors(path, tensors, meta)


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """(model_state, extra, config, progress); ValueError if the file is not a baselines checkpoint."""
    tensors, meta = read_safetensors(path, what="checkpoint")
    if meta.get("format") != CKPT_FORMAT:
        raise ValueError(f"{path}: not a {CKPT_FORMAT} checkpoint (metadata format={meta.get('format')!r}); "
                         f"delete it or run without --resume")
    if "content_sha256" not in meta:
        raise ValueError(f"{path}: checkpoint has no content hash; delete it or run without --resume")
    model = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    extra = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    return model, extra, json.loads(meta["config"]), json.loads(meta["progress"])


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


def env_info(device: torch.device) -> dict[str, Any]:
    """torch / CUDA versions and the device name."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine() or "cpu"
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "device": device.type, "device_name": name,
            "num_threads": torch.get_num_threads(),
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "matmul_precision": torch.get_float32_matmul_precision()}

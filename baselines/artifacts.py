"""Files written by the baselines: safetensors checkpoints (no pickle), result JSONs, traces; all atomic."""
from __future__ import annotations

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

CKPT_FORMAT = "cemnist-baselines-ckpt/1"
RESULT_SCHEMA = "cemnist-baselines-result/1"


def atomic_save_safetensors(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """``safetensors.torch.save_file`` to a temp file, then ``os.replace``."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def read_safetensors(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors on CPU, metadata)."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
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
    tensors, meta = read_safetensors(path)
    if meta.get("format") != CKPT_FORMAT:
        raise ValueError(f"{path}: not a {CKPT_FORMAT} checkpoint (metadata format={meta.get('format')!r})")
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

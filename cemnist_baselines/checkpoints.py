"""Checkpoint files of a run: the per-task checkpoints that ``--resume`` continues from, the shared task-0
checkpoint that the incremental methods of one seed reuse, and what a trace (``--trace``) keeps.

A checkpoint is one safetensors file (no pickle): the model weights as ``model.*``, the trace and the method
state (``method.*``) as ``extra.*``, the config and the run's progress as JSON metadata, all covered by one
content hash (:data:`cemnist_baselines.artifacts.HASH_KEY`). Files: ``checkpoints/{stem}/task{i}.safetensors``
after every task (:func:`task_checkpoint`; earlier versions named them ``step{i}.safetensors``, which
:func:`task_checkpoints` still finds) and ``checkpoints/_shared/task0-{setting}-{mode}-seed{seed}-{key}.safetensors``,
keyed by :func:`task0_key` (docs/PROTOCOL.md, "Shared task 0"). A checkpoint's ``progress`` metadata keeps the
per-task records under the key ``steps``, as the result JSON does (:mod:`cemnist_baselines.results`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from cemnist_data.labels import NUM_LABELS

from . import __version__
from .artifacts import atomic_save_safetensors, git_commit, read_safetensors
from .config import TrainConfig, complete_config
from .methods import state_to_device
from .model import SimpleSegNet, grow_head

CKPT_FORMAT = "cemnist-baselines-ckpt/3"
"""Format of a checkpoint: /3 adds the ``sha256`` entry over tensors and metadata (/2 hashed the tensors only)."""


def save_checkpoint(path: Path, *, model_state: dict[str, torch.Tensor], extra: dict[str, torch.Tensor],
                    config: dict[str, Any], progress: dict[str, Any]) -> None:
    """Model weights as ``model.*`` tensors, extra tensors as ``extra.*``; config/progress JSON in metadata,
    covered by the file's :data:`HASH_KEY` with the tensors."""
    tensors = {f"model.{k}": v for k, v in model_state.items()}
    tensors.update({f"extra.{k}": v for k, v in extra.items()})
    meta = {"format": CKPT_FORMAT, "config": json.dumps(config, sort_keys=True), "progress": json.dumps(progress)}
    atomic_save_safetensors(path, tensors, meta)


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """(model_state, extra, config, progress); ValueError if the file is not a baselines checkpoint of this
    format or its tensors or metadata were changed."""
    tensors, meta = read_safetensors(path, what="checkpoint", require_hash=True)
    if meta.get("format") != CKPT_FORMAT:
        raise ValueError(f"{path}: not a {CKPT_FORMAT} checkpoint (metadata format={meta.get('format')!r}); "
                         f"delete it or run without --resume")
    model = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    extra = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    return model, extra, json.loads(meta["config"]), json.loads(meta["progress"])


TASK_CHECKPOINT = re.compile(r"^(?:task|step)(\d+)\.safetensors$")
"""Name of a run's checkpoint after its task ``i``: ``task{i}.safetensors``, or ``step{i}.safetensors`` as
earlier versions wrote it (still read, never written)."""


def task_checkpoint(folder: Path, i: int) -> Path:
    """Where a run writes its checkpoint after task ``i`` (the ``i``-th entry of its plan) in ``folder``."""
    return folder / f"task{i}.safetensors"


def task_checkpoints(folder: Path) -> dict[int, Path]:
    """The run's checkpoints in ``folder`` by task index, under either name of :data:`TASK_CHECKPOINT`
    (``task{i}`` wins over an older ``step{i}`` of the same index); empty when there is no such folder."""
    if not folder.is_dir():
        return {}
    found: dict[int, Path] = {}
    for f in sorted(folder.iterdir(), key=lambda f: f.name.startswith("task")):  # task{i} last: it wins
        m = TASK_CHECKPOINT.match(f.name)
        if m is not None:
            found[int(m.group(1))] = f
    return dict(sorted(found.items()))


def remove_task_checkpoints(folder: Path) -> None:
    """Delete every per-task checkpoint in ``folder`` (both names): a fresh run leaves none of an older one."""
    if folder.is_dir():
        for f in folder.iterdir():
            if TASK_CHECKPOINT.match(f.name):
                f.unlink()


def trace_epochs(epochs: int, every: int) -> list[int]:
    """1-based epochs whose pool confusion ``--trace`` records: every ``every``-th (0 = auto, about 4 per
    task: each frame scores the whole evaluation pool) and always the last."""
    k = every if every > 0 else max(1, math.ceil(epochs / 4))
    return sorted(set(range(k, epochs + 1, k)) | {epochs})


class Trace:
    """Per-epoch confusions and per-task prediction panels (``--trace``)."""

    def __init__(self) -> None:
        self.conf: list[torch.Tensor] = []
        self.task: list[int] = []
        self.index: list[int] = []
        self.loss: list[float] = []
        self.panel_pred: list[torch.Tensor] = []

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            "epoch_confusion": torch.stack(self.conf).cpu() if self.conf else torch.zeros(0, NUM_LABELS, NUM_LABELS, dtype=torch.int64),
            "epoch_task": torch.tensor(self.task, dtype=torch.int64),
            "epoch_index": torch.tensor(self.index, dtype=torch.int64),
            "epoch_loss": torch.tensor(self.loss, dtype=torch.float32),
            "panel_pred": torch.stack(self.panel_pred).cpu() if self.panel_pred else torch.zeros(0, dtype=torch.uint8),
        }

    def load(self, t: dict[str, torch.Tensor]) -> None:
        self.conf = list(t["epoch_confusion"].unbind(0)) if t["epoch_confusion"].numel() else []
        self.task = t["epoch_task"].tolist()
        self.index = t["epoch_index"].tolist()
        self.loss = t["epoch_loss"].tolist()
        self.panel_pred = list(t["panel_pred"].unbind(0)) if t["panel_pred"].dim() == 4 else []


def code_fingerprint() -> str:
    """SHA-256 of the baselines package's source files (catches code changes that git metadata may not)."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def gpu_identity(device: torch.device) -> dict[str, Any]:
    """What decides a CUDA device's bits besides torch: GPU name, compute capability, cuDNN and CUDA versions."""
    return {"gpu": torch.cuda.get_device_name(device),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(device))),
            "cudnn": torch.backends.cudnn.version(), "cuda": torch.version.cuda}


def task0_key(cfg: TrainConfig, seed: int, device: torch.device, trace: bool, hashes: dict[str, str]) -> str:
    """Key of the shared task-0 checkpoint: everything that can change the task-0 weights or what the file
    holds (config minus method-only fields, seed, device type, trace flag, data hashes, package version, git
    commit with dirty marker, a hash of the package's source, torch version, thread count, precision; on CUDA
    also :func:`gpu_identity`, so a checkpoint of one GPU model or cuDNN is never reused on another)."""
    d = cfg.to_dict()
    for k in ("kd_lambda", "share_task0", "teacher_cache"):  # do not influence task 0
        d.pop(k)
    key: dict[str, Any] = {"cfg": d, "seed": seed, "device": device.type, "trace": trace, "data": hashes,
                           "package": __version__, "commit": git_commit(), "code": code_fingerprint(),
                           "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "precision": cfg.precision}
    if device.type == "cuda":
        key["gpu"] = gpu_identity(device)
    blob = json.dumps(key, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def shared_task0_path(out: Path, cfg: TrainConfig, seed: int, key: str) -> Path:
    """Where the shared task-0 checkpoint of ``key`` (:func:`task0_key`) lives in the output folder ``out``."""
    return out / "checkpoints" / "_shared" / f"task0-{cfg.setting}-{cfg.mode}-seed{seed}-{key}.safetensors"


@contextlib.contextmanager
def shared_task0_lock(path: Path | None) -> Iterator[None]:
    """Hold the file lock of a shared task-0 checkpoint (nothing when ``path`` is None): one of the runs of a
    seed trains task 0 and writes the file, the others wait for it and reuse it."""
    if path is None:
        yield
        return
    from cemnist_data.workdirs import path_lock

    path.parent.mkdir(parents=True, exist_ok=True)
    with path_lock(path.with_name(path.name + ".lock")):  # waits; deleted again on release
        yield


@dataclass
class RunProgress:
    """What a run has done so far, as its checkpoints save and restore it: the per-task records
    (``task_records``, one per trained task; the key ``steps`` of the checkpoint's progress and of the result
    JSON), the wall times, whether task 0 came from the shared checkpoint, the method's state
    (tensors the hooks keep) and the trace."""

    method: str
    seed: int
    config: dict[str, Any]
    trace: Trace | None = None
    task_records: list[dict[str, Any]] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    shared_task0: bool = False
    method_state: dict[str, torch.Tensor] = field(default_factory=dict)

    def progress(self, model: SimpleSegNet) -> dict[str, Any]:
        return {"steps": self.task_records, "wall_time_per_task_s": self.walls, "shared_task0": self.shared_task0,
                "num_classes": model.num_classes, "method": self.method, "seed": self.seed}

    def save(self, path: Path, model: SimpleSegNet, *, with_state: bool = True) -> None:
        """Write a checkpoint of ``model`` and this progress (the shared task 0 without the method state)."""
        extra = self.trace.tensors() if self.trace else {}
        if with_state:
            extra.update({f"method.{k}": v for k, v in self.method_state.items()})
        save_checkpoint(path, model_state=model.state_dict(), extra=extra, config=self.config,
                        progress=self.progress(model))

    def restore(self, path: Path, model: SimpleSegNet, device: torch.device) -> None:
        """Continue from the checkpoint ``path`` of this run (``--resume``); ValueError when another run
        (config, method or seed) wrote it."""
        state, extra, config, prog = load_checkpoint(path)
        config = complete_config(config)
        if config != self.config or prog["method"] != self.method or prog["seed"] != self.seed:
            diff = sorted(k for k in set(config) | set(self.config) if config.get(k) != self.config.get(k))
            raise ValueError(f"checkpoint {path} was written by a different run (config fields differing: {diff}, "
                             f"method {prog['method']!r}, seed {prog['seed']}); delete it or run without --resume")
        if model.num_classes != prog["num_classes"]:
            grow_head(model, prog["num_classes"] - model.num_classes, generator=torch.Generator().manual_seed(0))
        model.load_state_dict({k: v.to(device) for k, v in state.items()})
        self.task_records, self.walls = prog["steps"], prog["wall_time_per_task_s"]
        self.shared_task0 = prog["shared_task0"]
        self.method_state.clear()
        self.method_state.update({k[len("method."):]: v for k, v in extra.items() if k.startswith("method.")})
        state_to_device(self.method_state, device)
        if self.trace is not None:
            if "epoch_confusion" not in extra:
                raise ValueError(f"checkpoint {path} has no trace; resume without --resume's --trace or rerun from scratch")
            self.trace.load(extra)

    def reuse_shared_task0(self, path: Path, model: SimpleSegNet, device: torch.device) -> bool:
        """Take task 0 from the shared checkpoint ``path`` if it exists and loads; a damaged file is warned
        about and recomputed (False), never fatal for later runs."""
        if not path.exists():
            return False
        try:
            prog = restore_shared(path, model, self.trace, device)
        except ValueError as e:
            import warnings
            warnings.warn(f"{e}; recomputing the shared task-0 checkpoint", stacklevel=3)
            return False
        self.task_records[:] = prog["steps"]
        self.walls[:] = prog["wall_time_per_task_s"]
        self.shared_task0 = True
        return True


def restore_shared(path: Path, model: SimpleSegNet, trace: Trace | None, dev: torch.device) -> dict[str, Any]:
    """Load the shared task-0 checkpoint's weights (and trace) into ``model`` / ``trace``; returns its progress."""
    state, extra, _, prog = load_checkpoint(path)
    model.load_state_dict({k: v.to(dev) for k, v in state.items()})
    if trace is not None:
        trace.load(extra)
    return prog

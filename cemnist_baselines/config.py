"""Training defaults on one screen (nanoGPT style) and the named presets.

Fields are of three kinds. *Protocol* fields (:data:`PROTOCOL_FIELDS`) can change the numbers: they, the
dataset content hashes and the device type form a leaderboard row's key. *Speed* fields change how fast a
run goes, never what it computes beyond float rounding; they are recorded but never split rows.
*Behaviour* fields choose what is saved.

``default`` is the v1 protocol chosen by the budget study of docs/PROTOCOL.md for a 2-core CPU (Adam with a
OneCycle schedule, peak 3e-3, batch 32, 8 epochs per task, bf16 autocast). ``long`` is the 100-epoch protocol
of the baselines issue (Adam 5e-4 constant, batch 72, fp32), meant for a GPU; ``tiny`` runs the whole 5-task
pipeline per method in seconds (tests, CI).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from cemnist_data.spec import MODES

SCHEDULES = ("constant", "cosine", "onecycle")
EVAL_SPLITS = ("test", "validation")


LR_MAX = 1.0
"""Largest peak learning rate accepted (``lr``, ``lr_next``; valid range (0, 1]): Adam diverges far below it on
this network, and inf or 1e300 would write NaN checkpoints."""
KD_LAMBDA_MAX = 1e4
"""Largest distillation weight accepted (``kd_lambda``; valid range [0, 1e4]; the presets use 10)."""


def _is_number(v: Any) -> bool:
    """A finite int or float (not a bool, not NaN or infinite)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class TrainConfig:
    # ---- protocol (leaderboard row key)
    setting: str = "2-2"                  # digits per task, parsed by cemnist_data.parse_setting
    mode: str = "overlap"                 # overlap | disjoint
    class_order: tuple[int, ...] | None = None  # None = the release's order (identity)
    epochs: int = 8                       # epochs per task (joint: the same total image-steps)
    batch_size: int = 32
    lr: float = 3e-3                      # Adam, rebuilt at every task; peak lr of the schedule
    lr_next: float | None = None          # peak lr of tasks t > 0 (None = lr; MiB and PLOP use a lower one)
    schedule: str = "onecycle"            # constant | cosine | onecycle (per task, stepped every batch)
    warmup: float = 0.15                  # fraction of a task's steps warming up (onecycle's pct_start)
    kd_lambda: float = 10.0               # weight of the distillation term (kd, mib)
    width: int = 32                       # SimpleSegNet filters
    amp_bf16: bool = True                 # bf16 autocast of the convs (precision "bf16"), else fp32
    eval_split: str = "test"              # the fixed evaluation pool: whole test pool, or every task's validation
    max_train: int | None = None          # first n train images of every task (joint: the same images)
    max_test: int | None = None           # one fixed seeded subset of n images of the evaluation pool
    # ---- speed (recorded, never a row key)
    compile: bool = False                 # torch.compile the step (opt-in: each task compiles new graphs)
    cuda_graphs: bool = False             # compile with mode="reduce-overhead" (CUDA graphs; implies compile)
    cudnn_benchmark: bool = True          # let cuDNN time its conv algorithms once per shape (CUDA)
    deterministic: bool = False           # CUDA: cuDNN benchmarking off, deterministic algorithms (warn_only)
    channels_last: bool = True            # NHWC convs (1.43x naive / 1.50x kd per epoch on a 2-core CPU:
                                          # bench/bench_train_epoch.py --device cpu --variants eager nchw)
    teacher_cache: bool = True            # kd/mib: old-model logits computed once per task, not every batch
    eval_batch_size: int = 500
    # ---- behaviour
    share_task0: bool = True              # naive/kd/mib reuse one task-0 checkpoint per seed
    trace_every: int = 0                  # with --trace: record the pool confusion every k epochs (0 = auto:
                                          # about 4 frames per task) and always after the last epoch
    trace_panel: int = 16                 # number of panel images in the trace
    dataset_path: str = "cemnist"         # passed to cemnist_data as `path`

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.eval_split not in EVAL_SPLITS:
            raise ValueError(f"eval_split must be one of {EVAL_SPLITS}, got {self.eval_split!r}")
        if not 0.0 <= float(self.warmup) < 1.0:
            raise ValueError(f"warmup must be a fraction in [0, 1), got {self.warmup!r}")
        for name in ("epochs", "batch_size", "width", "eval_batch_size", "trace_panel"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("max_train", "max_test"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be None (whole split) or an integer >= 1, got {v!r}")
        if isinstance(self.trace_every, bool) or not isinstance(self.trace_every, int) or self.trace_every < 0:
            raise ValueError(f"trace_every must be an integer >= 0 (0 = auto), got {self.trace_every!r}")
        for name in ("lr", "lr_next"):
            v = getattr(self, name)
            if name == "lr_next" and v is None:
                continue
            if not (_is_number(v) and 0 < v <= LR_MAX):
                raise ValueError(f"{name} must be > 0 and <= {LR_MAX:g}: a finite peak learning rate in (0, {LR_MAX:g}] "
                                 f"(the presets use 3e-3 and 5e-4){' or None (= lr)' if name == 'lr_next' else ''}, "
                                 f"got {v!r}")
        if not (_is_number(self.kd_lambda) and 0 <= self.kd_lambda <= KD_LAMBDA_MAX):
            raise ValueError(f"kd_lambda must be >= 0 and <= {KD_LAMBDA_MAX:g}: a finite weight in [0, {KD_LAMBDA_MAX:g}] "
                             f"(the presets use 10), got {self.kd_lambda!r}")

    @property
    def precision(self) -> str:
        """``"bf16"`` (autocast) or ``"fp32"``."""
        return "bf16" if self.amp_bf16 else "fp32"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field."""
        d = dataclasses.asdict(self)
        if d["class_order"] is not None:
            d["class_order"] = list(d["class_order"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys are a ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {unknown}")
        d = dict(d)
        if d.get("class_order") is not None:
            d["class_order"] = tuple(int(c) for c in d["class_order"])
        return cls(**d)

    def replace(self, **kw: Any) -> "TrainConfig":
        """Copy with some fields changed."""
        return dataclasses.replace(self, **kw)

    def resolved(self, device_type: str) -> "TrainConfig":
        """The config as it runs on ``device_type``: CUDA graphs, cuDNN benchmarking and ``deterministic`` only on
        CUDA (a CPU run is deterministic as it is), where CUDA graphs imply compile and ``deterministic`` turns
        benchmarking off."""
        cuda = device_type == "cuda"
        graphs = bool(self.cuda_graphs) and cuda
        det = bool(self.deterministic) and cuda
        return self.replace(compile=bool(self.compile) or graphs, cuda_graphs=graphs, amp_bf16=bool(self.amp_bf16),
                            cudnn_benchmark=bool(self.cudnn_benchmark) and cuda and not det, deterministic=det)

    def protocol(self) -> dict[str, Any]:
        """The protocol fields only (what a leaderboard row is keyed by, with data hashes and device type)."""
        d = self.to_dict()
        return {k: d[k] for k in PROTOCOL_FIELDS}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


PROTOCOL_FIELDS: tuple[str, ...] = ("setting", "mode", "class_order", "epochs", "batch_size", "lr", "lr_next", "schedule",
                                    "warmup", "kd_lambda", "width", "amp_bf16", "eval_split", "max_train",
                                    "max_test")
SPEED_FIELDS: tuple[str, ...] = ("compile", "cuda_graphs", "cudnn_benchmark", "deterministic", "channels_last",
                                 "teacher_cache", "eval_batch_size")
BEHAVIOUR_FIELDS: tuple[str, ...] = ("share_task0", "trace_every", "trace_panel", "dataset_path")

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # the 100-epoch protocol of the baselines issue (a GPU-day for the board on 2 CPU cores)
    "long": {"epochs": 100, "batch_size": 72, "lr": 5e-4, "schedule": "constant", "warmup": 0.0, "amp_bf16": False},
    "tiny": {"epochs": 2, "max_train": 64, "max_test": 32, "batch_size": 16, "trace_panel": 4, "amp_bf16": False},
}
DEFAULT_SEEDS: dict[str, tuple[int, ...]] = {"default": (0, 1, 2), "long": (0, 1, 2), "tiny": (0,)}


def complete_config(d: dict[str, Any]) -> dict[str, Any]:
    """A recorded config dict with the fields it lacks set to their defaults: a result or checkpoint written
    before a field existed ran with that field's default (e.g. ``deterministic``), so it compares equal."""
    out = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name not in d}
    out.update(d)
    return out


def check_mode(mode: str) -> str:
    """``mode`` itself when it is one of :data:`cemnist_data.spec.MODES` (overlap or disjoint, docs/PROTOCOL.md);
    else a ValueError."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose 'overlap' or 'disjoint'")
    return mode


def get_config(preset: str = "default", **overrides: Any) -> TrainConfig:
    """The preset's config with ``overrides`` applied (``None`` overrides are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    kw = dict(PRESETS[preset])
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**kw)


if set(PROTOCOL_FIELDS) | set(SPEED_FIELDS) | set(BEHAVIOUR_FIELDS) != {f.name for f in dataclasses.fields(TrainConfig)}:
    raise RuntimeError("every TrainConfig field must be classed as protocol, speed or behaviour")

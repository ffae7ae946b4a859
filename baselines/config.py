"""Training defaults on one screen (nanoGPT style) and the named presets.

``default`` is the full protocol of issue 3 (Adam 5e-4 rebuilt per task, batch 72, 100 epochs/task,
seeds 0 1 2, setting 2-2, mode overlap). ``quick`` finishes the 4 methods x 1 seed in a few minutes on a
2-core CPU; ``tiny`` runs the whole 5-task pipeline per method in seconds (tests, CI).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    # protocol
    setting: str = "2-2"                  # digits per task, parsed by cemnist_data.parse_setting
    mode: str = "overlap"                 # overlap | disjoint
    class_order: tuple[int, ...] | None = None  # None = the release's order (identity)
    epochs: int = 100                     # epochs per task (joint: same total image-steps)
    batch_size: int = 72
    lr: float = 5e-4                      # Adam, rebuilt at every task
    kd_lambda: float = 10.0               # weight of KD / UnKD
    width: int = 32                       # SimpleSegNet filters
    # data subsets (None = full split); first n rows, deterministic
    max_train: int | None = None
    max_test: int | None = None
    # speed (no protocol hyperparameter; each is recorded in every result and splits leaderboard rows)
    compile: bool = False                 # torch.compile the step (opt-in: every task compiles new graphs, as the
                                          # head grows and the last batch is partial)
    cuda_graphs: bool = False             # compile with mode="reduce-overhead" (CUDA graphs; implies compile)
    cudnn_benchmark: bool = True          # let cuDNN time its conv algorithms once per shape (CUDA)
    amp_bf16: bool = False                # bf16 autocast of the convs (opt-in: the reference numbers are fp32;
                                          # cuDNN's TF32 convs stay at torch's default)
    channels_last: bool = True            # NHWC convs (1.43x naive / 1.50x kd per epoch on a 2-core CPU:
                                          # bench/bench_train_epoch.py --device cpu --variants eager nchw)
    eval_batch_size: int = 1000
    # behaviour
    share_task0: bool = True              # naive/kd/mib reuse one task-0 checkpoint per seed
    trace_every: int = 0                  # with --trace: record test confusion every k epochs (0 = auto:
                                          # about 20 frames per task) and always after the last epoch
    trace_panel: int = 16                 # number of panel images in the trace
    dataset_path: str = "cemnist"         # passed to cemnist_data as `path`

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
        """The config as it runs on ``device_type``: CUDA graphs (and cuDNN benchmarking) only on CUDA, where
        CUDA graphs imply compile."""
        cuda = device_type == "cuda"
        graphs = bool(self.cuda_graphs) and cuda
        return self.replace(compile=bool(self.compile) or graphs, cuda_graphs=graphs, amp_bf16=bool(self.amp_bf16),
                            cudnn_benchmark=bool(self.cudnn_benchmark) and cuda)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # quick: a pipeline check on a 2-core CPU (~5 min for naive kd mib joint, seed 0); far too little
    # training for meaningful numbers (the model still predicts mostly background).
    "quick": {"epochs": 4, "max_train": 192, "max_test": 256, "batch_size": 16},
    "tiny": {"epochs": 2, "max_train": 64, "max_test": 32, "batch_size": 16, "trace_panel": 4},
    # cpu-demo: NOT the protocol (smaller batch, 4x the learning rate, 1,000 train images, 8 epochs) so that
    # forgetting becomes visible on a 2-core CPU in ~15 min (naive kd mib, seed 0); for pictures, not for
    # the leaderboard.
    "cpu-demo": {"epochs": 8, "max_train": 1000, "max_test": 500, "batch_size": 16, "lr": 2e-3},
}
DEFAULT_SEEDS: dict[str, tuple[int, ...]] = {"default": (0, 1, 2), "quick": (0,), "tiny": (0,), "cpu-demo": (0,)}


def get_config(preset: str = "default", **overrides: Any) -> TrainConfig:
    """The preset's config with ``overrides`` applied (``None`` overrides are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    kw = dict(PRESETS[preset])
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**kw)

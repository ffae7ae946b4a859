"""The v1 protocol on a GPU against the committed CPU board (gpu) and concurrent runs in spawned processes (slow)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from cemnist_baselines.config import get_config
from cemnist_baselines.leaderboard import aggregate
from cemnist_baselines.results import load_results
from cemnist_baselines.runner import run_many
from cemnist_baselines.targets import compare_boards



V1 = Path(__file__).resolve().parents[2] / "results" / "v1"


@pytest.mark.gpu
def test_default_protocol_on_gpu_gives_the_cpu_boards_numbers(tmp_path, cemnist_cache):
    """The v1 board's protocol on a GPU (2-2 overlap, every method on the board, seeds 0 1 2) gives the committed
    CPU board's numbers: every method's final mIoU(bg) and first-task IoU within max(3 x the CPU seed std, 0.03) of
    the CPU mean, so the two devices' rows compare (bf16 kernels differ; bit-identity is not expected)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    protocol = get_config("default").protocol()
    cpu = {r["method"]: r for r in aggregate(load_results(V1)) if r["protocol"] == protocol and r["device"] == "cpu"}
    assert len(cpu) == 8, sorted(cpu)
    results = run_many(methods=sorted(cpu), seeds=[0, 1, 2], cfg=get_config("default"), out_dir=tmp_path,
                       preset="default", device="cuda", jobs=4, progress=False)
    gpu = {r["method"]: r for r in aggregate(results)}
    off = compare_boards(cpu, gpu)
    assert not off, "the GPU board differs from the CPU board:\n" + "\n".join(off)


@pytest.mark.slow
def test_jobs_in_spawned_processes_equal_sequential(tmp_path, tiny_cfg):
    # spawned workers get cpu_count // jobs threads; CPU conv reductions depend on the thread count, so
    # the sequential reference runs with the same count
    jobs = 2
    threads = max(1, (os.cpu_count() or 1) // jobs)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        seq = run_many(methods=["naive", "kd", "mib"], seeds=[0], cfg=tiny_cfg, out_dir=tmp_path / "seq",
                       preset="tiny", device="cpu", progress=False)
    finally:
        torch.set_num_threads(before)
    res = run_many(methods=["naive", "kd", "mib"], seeds=[0], cfg=tiny_cfg, out_dir=tmp_path / "par", preset="tiny",
                   device="cpu", jobs=jobs, progress=False)
    for a, b in zip(seq, res):
        assert (a["method"], a["seed"]) == (b["method"], b["seed"])
        assert a["steps"] == b["steps"] and a["final"] == b["final"], a["method"]
    assert sum(r["shared_task0"] for r in res) == 2
    assert json.loads((tmp_path / "par" / "kd-2-2-overlap-seed0.json").read_text())["final"] == res[1]["final"]

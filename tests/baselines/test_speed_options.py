"""Speed options never change the protocol silently: how they resolve per device, bf16 autocast honoured
on CPU, the commit recorded for wheel installs, and the CLI flags reaching the config."""
from __future__ import annotations

import json
import subprocess

import pytest
import torch

from cemnist_baselines import artifacts
from cemnist_baselines.cli import main as cli_main
from cemnist_baselines.config import get_config
from cemnist_baselines.registry import METHODS
from cemnist_baselines.model import SimpleSegNet
from cemnist_baselines.data import label_maps
from cemnist_baselines.optim_step import make_step, train_epoch


@pytest.mark.parametrize(
    "over, device, expect",
    [
        ({}, "cpu", dict(compile=False, cuda_graphs=False, amp_bf16=True, cudnn_benchmark=False)),
        ({}, "cuda", dict(compile=False, cuda_graphs=False, amp_bf16=True, cudnn_benchmark=True)),
        ({"cuda_graphs": True}, "cuda", dict(compile=True, cuda_graphs=True)),    # graphs imply compile
        ({"cuda_graphs": True}, "cpu", dict(compile=False, cuda_graphs=False)),   # no graphs on CPU
        ({"compile": True, "amp_bf16": True}, "cpu", dict(compile=True, amp_bf16=True)),
    ],
)
def test_resolved_speed_fields(over, device, expect):
    cfg = get_config("default", **over).resolved(device)
    assert {k: getattr(cfg, k) for k in expect} == expect
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.schedule) == (8, 32, 3e-3, "onecycle")  # protocol untouched
    assert cfg.protocol() == get_config("default", **{k: v for k, v in over.items() if k == "amp_bf16"}).protocol()


def _losses(amp: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (32, 60, 60), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 3, (32, 60, 60), dtype=torch.uint8, generator=g)
    lut, _ = label_maps([[0, 1]], 0, torch.device("cpu"))
    m = SimpleSegNet(3, generator=torch.Generator().manual_seed(0))
    cfg = get_config("default", batch_size=16, amp_bf16=amp).resolved("cpu")
    step = make_step(m, None, METHODS["naive"].loss, lut, cfg=cfg, c_old=3, device=torch.device("cpu"),
                     total_steps=2)  # 32 images, batch 16
    return train_epoch(step, x, y, batch_size=16, generator=torch.Generator().manual_seed(0))


def test_bf16_autocast_is_used_on_cpu_when_asked():
    fp32, bf16 = _losses(False), _losses(True)
    assert torch.isfinite(bf16).all()
    assert not torch.equal(fp32, bf16)                      # autocast really ran (bf16 convs differ)
    torch.testing.assert_close(bf16, fp32, rtol=2e-2, atol=2e-2)


def test_git_commit_falls_back_to_the_environment(monkeypatch):
    def no_git(*a, **k):
        raise OSError("git not installed")

    monkeypatch.setattr(subprocess, "run", no_git)
    monkeypatch.delenv("CEMNIST_GIT_COMMIT", raising=False)
    assert artifacts.git_commit() is None
    monkeypatch.setenv("CEMNIST_GIT_COMMIT", "abc123-dirty")
    assert artifacts.git_commit() == "abc123-dirty"


def test_git_commit_marks_a_dirty_tree(monkeypatch):
    calls = []

    def fake_run(cmd, **k):
        calls.append(cmd[1])
        out = {"rev-parse": "f" * 40 + "\n", "status": " M cemnist_baselines/trainer.py\n"}[cmd[1]]
        return subprocess.CompletedProcess(cmd, 0, stdout=out, stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert artifacts.git_commit() == "f" * 40 + "-dirty"
    assert calls == ["rev-parse", "status"]


def test_cli_amp_and_graph_flags_reach_the_result(tmp_path, cemnist_cache):
    out = tmp_path / "r"
    rc = cli_main(["run", "--method", "naive", "--preset", "tiny", "--device", "cpu", "--amp", "--cuda-graphs",
                   "--epochs", "1", "--max-train", "16", "--max-test", "8", "--out", str(out), "--no-progress"])
    assert rc == 0
    c = json.loads((out / "naive-2-2-overlap-seed0.json").read_text())["config"]
    assert (c["amp_bf16"], c["cuda_graphs"], c["compile"], c["cudnn_benchmark"]) == (True, False, False, False)

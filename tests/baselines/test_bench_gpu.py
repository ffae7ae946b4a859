"""The GPU bench and acceptance script say what they run: the epoch bench's variants name their precision (its
``eager`` is the default protocol's bf16, ``fp32`` is fp32), ``--device cuda`` without CUDA is one line, the GPU
session script's labels are true, and ``bench/gpu/check.sh`` dry-runs on a CPU (slow: about 2 minutes)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cemnist_baselines.config import get_config

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_train_epoch", ROOT / "bench" / "bench_train_epoch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_bench_variants_are_what_their_names_say():
    bench = _bench()
    prec = {v: get_config("default", **kw).precision for v, kw in bench.VARIANTS.items()}
    assert prec == {"eager": "bf16", "fp32": "fp32", "compiled": "bf16", "graphs": "bf16", "fp32-graphs": "fp32",
                    "nchw": "bf16", "bf16": "bf16", "bf16-graphs": "bf16"}
    assert get_config("default", **bench.VARIANTS["fp32-graphs"]).resolved("cuda").cuda_graphs
    doc = bench.__doc__
    assert "**bf16 autocast**" in doc and "eager fp32 fast path" not in doc
    session = (ROOT / "bench" / "gpu" / "session.sh").read_text()
    assert "100 epochs" not in session and "eager fp32, the default" not in session
    assert "--variants eager fp32" in session


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_bench_cuda_without_cuda_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        _bench().main(["--device", "cuda"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("bench_train_epoch.py: error: --device cuda was requested but CUDA is not available")
    assert "Traceback" not in err


@pytest.mark.slow
def test_check_sh_dry_runs_on_cpu(tmp_path, cemnist_cache):
    env = dict(os.environ, DEVICE="cpu", SMOKE="1", PYTHON=sys.executable, OUT=str(tmp_path / "out"),
               GPUCHK_WORK=str(tmp_path / "work"), CEMNIST_CACHE=cemnist_cache, BUDGET="400")
    p = subprocess.run(["bash", "bench/gpu/check.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    summary = (tmp_path / "out" / "gpu_check_summary.txt").read_text()
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    rows = {line.split()[0]: line.split()[1] for line in summary.splitlines()
            if line and line.split()[0] in ("setup", "build", "a.naive", "a.replay", "b", "d.same", "r", "j", "t",
                                            "c", "det.same")}
    assert rows == {"setup": "PASS", "build": "PASS", "a.naive": "PASS", "a.replay": "PASS", "b": "INFO",
                    "d.same": "SAME", "r": "PASS", "j": "PASS", "t": "PASS", "c": "SKIP", "det.same": "SAME"}, summary
    assert "FAIL" not in summary and "TIMEOUT" not in summary
    assert {f.name for f in (tmp_path / "out").iterdir()} == {"gpu_check_summary.txt", "gpu_check_results.jsonl",
                                                              "gpu_check_logs.tar.gz"}

"""Every number unchanged: tiny runs of the built-in methods give the committed result JSONs bit for bit.

``references/tiny/`` holds the result JSONs of ``cemnist-baselines run --preset tiny --epochs 1
--max-train 16 --max-test 8 --no-progress --seeds 0 --device cpu`` for every built-in method in the overlap
mode (one ``run`` over all methods, so the non-joint methods reuse naive's task 0) and for ``mib`` in the
disjoint mode, made before the refactor of the trainer, the method registry and the package layout. Only the
fields that name the machine or the moment differ between two runs of the same code: the wall times, the git
commit, the run id (a hash over the commit) and ``env``; everything else -- confusions, metrics, config,
protocol, dataset hashes -- must be equal. CPU kernels differ between ISAs and torch versions, so the test
skips (saying why) where ``env.torch`` or ``env.aten_cpu_capability`` differ from the references'.

The full comparison takes about 90 s on 2 cores (slow); two methods (plop: features, a per-batch old model,
POD; replay: mixed batches) run in the default suite.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REFS = Path(__file__).parent / "references" / "tiny"
VOLATILE = ("wall_time_per_task_s", "git_commit", "run_id", "env")
ARGS = ["--seeds", "0", "--preset", "tiny", "--epochs", "1", "--max-train", "16", "--max-test", "8",
        "--no-progress", "--device", "cpu"]


def _stable(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in VOLATILE}


def _run(tmp_path: Path, cache: Path, mode: str, methods: list[str]) -> Path:
    from cemnist_baselines.cli import main

    out = tmp_path / mode
    assert main(["run", "--method", *methods, *ARGS, "--mode", mode, "--out", str(out),
                 "--cache-dir", str(cache)]) == 0
    return out


def _check(out: Path, mode: str, methods: list[str], *, shared: bool = True) -> None:
    import torch

    for m in methods:
        name = f"{m}-2-2-{mode}-seed0.json"
        ref = json.loads((REFS / mode / name).read_text())
        got = json.loads((out / name).read_text())
        env_ref, env_got = ref["env"], got["env"]
        for k in ("torch", "aten_cpu_capability"):
            if env_ref.get(k) != env_got.get(k):
                pytest.skip(f"references made with env.{k}={env_ref.get(k)!r}, this machine has {env_got.get(k)!r}")
        a, b = _stable(ref), _stable(got)
        if not shared:  # a method run alone trains its own task 0: same numbers, another provenance flag
            a.pop("shared_task0"), b.pop("shared_task0")
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        assert not diff, f"{name}: fields {diff} differ from the committed tiny reference (torch {torch.__version__})"


@pytest.mark.slow
def test_all_builtin_methods_reproduce_the_tiny_references(tmp_path, shared_cache):
    from cemnist_baselines.registry import BUILTIN_METHODS

    refs = sorted(p.name.split("-2-2-")[0] for p in (REFS / "overlap").glob("*.json"))
    assert refs == sorted(BUILTIN_METHODS), "a built-in method without a tiny reference (or a stale reference)"
    _check(_run(tmp_path, shared_cache, "overlap", list(BUILTIN_METHODS)), "overlap", list(BUILTIN_METHODS))
    _check(_run(tmp_path, shared_cache, "disjoint", ["mib"]), "disjoint", ["mib"])


def test_plop_and_replay_reproduce_the_tiny_references(tmp_path, shared_cache):
    _check(_run(tmp_path, shared_cache, "overlap", ["plop", "replay"]), "overlap", ["plop", "replay"], shared=False)

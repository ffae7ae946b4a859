"""Every number unchanged: tiny runs of the built-in methods give the committed result JSONs.

``references/tiny/`` holds the result JSONs of ``cemnist-baselines run --preset tiny --epochs 1
--max-train 16 --max-test 8 --no-progress --seeds 0 --device cpu`` for every built-in method in the overlap
mode (one ``run`` over all methods, so the non-joint methods reuse naive's task 0) and for ``mib`` in the
disjoint mode, made before the refactor of the trainer, the method registry and the package layout, on an
AMD EPYC CPU (``env.aten_cpu_capability`` AVX512, torch 2.13.0+cpu). Only the fields that name the machine or
the moment differ between two runs of the same code: the wall times, the git commit, the run id (a hash over
the commit) and ``env``.

Where torch and its CPU kernel family (``env.torch``, ``env.aten_cpu_capability``) are the references', every
other field -- confusions, metrics, config, protocol, dataset hashes -- must be equal, bit for bit. CPU kernels
round differently on other ISAs and torch versions, so elsewhere the check falls back to the tolerance of
``cemnist-baselines compare`` (:func:`cemnist_baselines.targets.compare_boards`: 0.03 for a single seed) on
the final metrics and on every step's mIoU(bg), with every non-numeric field still equal. Each test prints
which check ran.

Default suite: the session's tiny board (tests/baselines/conftest.py) is trained with exactly this config
and ``--trace`` (which changes no number), so all the overlap references are compared for free. Slow: the
same through the command line, without ``--trace``, plus ``mib`` in the disjoint mode (about 90 s on 2
cores).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

REFS = Path(__file__).parent / "references" / "tiny"
VOLATILE = ("wall_time_per_task_s", "git_commit", "run_id", "env")
ARGS = ["--seeds", "0", "--preset", "tiny", "--epochs", "1", "--max-train", "16", "--max-test", "8",
        "--no-progress", "--device", "cpu"]
CPU_KIND = ("torch", "aten_cpu_capability")
"""The ``env`` entries that decide which CPU kernels (and so which roundings) a run gets."""
NUMBERS = ("steps", "R", "final")
"""The fields computed from the model's predictions: equal on the same CPU kind, within tolerance elsewhere."""
FLOOR = 0.03
"""The tolerance of ``cemnist-baselines compare`` for a single seed (its floor; no seed std to scale)."""


def _stable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in VOLATILE}


def exact_diff(ref: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """The fields (volatile ones aside) in which ``got`` differs from the reference ``ref``."""
    a, b = _stable(ref), _stable(got)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def tolerance_diff(ref: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """What separates ``got`` from ``ref`` beyond rounding: a differing non-numeric field, a step that saw other
    classes or another pool, a step's mIoU(bg) more than :data:`FLOOR` away, or ``compare``'s verdict on the
    final metrics."""
    from cemnist_baselines.leaderboard import aggregate
    from cemnist_baselines.targets import compare_boards

    a, b = _stable(ref), _stable(got)
    out = sorted(k for k in set(a) | set(b) if k not in NUMBERS and a.get(k) != b.get(k))
    if len(a["steps"]) != len(b["steps"]):
        return out + [f"steps: {len(b['steps'])} steps, the reference has {len(a['steps'])}"]
    for i, (s, t) in enumerate(zip(a["steps"], b["steps"])):
        if (s["task"], s["classes_seen"], s["epochs"]) != (t["task"], t["classes_seen"], t["epochs"]):
            out.append(f"steps[{i}]: another task, classes or epochs than the reference's")
        if [sum(row) for row in s["confusion"]] != [sum(row) for row in t["confusion"]]:
            out.append(f"steps[{i}].confusion: another evaluation pool (its per-label pixel counts differ)")
        if abs(s["miou_bg"] - t["miou_bg"]) > FLOOR:
            out.append(f"steps[{i}].miou_bg: {t['miou_bg']:.4f} against the reference {s['miou_bg']:.4f}")
    no_time = [0.0] * len(ref["steps"])  # the references keep no wall times; compare reads none
    (row_a,), (row_b,) = aggregate([{**ref, "wall_time_per_task_s": no_time}]), aggregate([got])
    return out + compare_boards({ref["method"]: row_a}, {got["method"]: row_b}, floor=FLOOR)


def check_against_references(got: dict[str, dict[str, Any]], mode: str) -> str:
    """Compare each result of ``got`` (``{method: result}``) with its reference: exactly where the CPU kind is
    the references', within tolerance elsewhere. Returns a line saying which check ran."""
    kinds = set()
    for m, r in got.items():
        name = f"{m}-2-2-{mode}-seed0.json"
        ref = json.loads((REFS / mode / name).read_text())
        same = all(ref["env"].get(k) == r["env"].get(k) for k in CPU_KIND)
        diff = exact_diff(ref, r) if same else tolerance_diff(ref, r)
        kind = ", ".join(f"{k}={r['env'].get(k)!r}" for k in CPU_KIND)
        assert not diff, (f"{name}: {'exact' if same else 'tolerance'} check on {kind}: {diff} differ from the "
                          f"committed tiny reference")
        kinds.add(same)
    ref_kind = ", ".join(f"{k}={ref['env'].get(k)!r}" for k in CPU_KIND)
    how = {True: "compared exactly (same CPU kind as the references)",
           False: f"compared within compare's tolerance {FLOOR} (references: {ref_kind}; this machine: {kind})"}
    return f"{len(got)} {mode} reference(s) " + " and ".join(how[k] for k in sorted(kinds, reverse=True))


def _cli_run(tmp_path: Path, cache: Path, mode: str, methods: list[str]) -> dict[str, dict[str, Any]]:
    from cemnist_baselines.cli import main

    out = tmp_path / mode
    assert main(["run", "--method", *methods, *ARGS, "--mode", mode, "--out", str(out),
                 "--cache-dir", str(cache)]) == 0
    return {m: json.loads((out / f"{m}-2-2-{mode}-seed0.json").read_text()) for m in methods}


def test_the_references_are_the_built_in_methods():
    from cemnist_baselines.registry import BUILTIN_METHODS

    refs = sorted(p.name.split("-2-2-")[0] for p in (REFS / "overlap").glob("*.json"))
    assert refs == sorted(BUILTIN_METHODS), "a built-in method without a tiny reference (or a stale reference)"


def test_the_tiny_board_reproduces_the_tiny_references(tiny_runs, tiny_cfg, capsys):
    from cemnist_baselines.config import get_config

    assert tiny_cfg == get_config("tiny", epochs=1, max_train=16, max_test=8)  # the references' config
    _, res = tiny_runs
    line = check_against_references({m: copy.deepcopy(r) for m, r in res.items()}, "overlap")
    with capsys.disabled():
        print(f"\n{line}")


def test_the_tolerance_check_accepts_rounding_and_flags_a_moved_metric(tiny_runs):
    """The check used on another CPU kind: the board's naive run passes it; a run whose last model gets the
    background right (the tiny run's predicts one digit everywhere; confusion, metrics and summary kept
    consistent), or that has another config, is named."""
    from cemnist_baselines.metrics import recompute_task_metrics, summarize

    ref = json.loads((REFS / "overlap" / "naive-2-2-overlap-seed0.json").read_text())
    got = copy.deepcopy(tiny_runs[1]["naive"])
    assert tolerance_diff(ref, got) == []
    last = got["steps"][-1]
    row = last["confusion"][0]
    row[:] = [sum(row)] + [0] * (len(row) - 1)
    last.update(recompute_task_metrics(last["confusion"], last["classes_seen"]))
    summ = summarize(got["steps"], got["tasks"])
    got["R"], got["final"] = summ["R"], summ["final"]
    assert last["miou_bg"] - ref["steps"][-1]["miou_bg"] > FLOOR
    diff = tolerance_diff(ref, got)
    assert diff[0].startswith("steps[4].miou_bg: ") and diff[1].startswith("naive future_bg.miou_bg: "), diff
    got = copy.deepcopy(tiny_runs[1]["naive"])
    got["config"] = {**got["config"], "lr": 0.001}
    assert tolerance_diff(ref, got) == ["config"]


@pytest.mark.slow
def test_all_builtin_methods_reproduce_the_tiny_references_from_the_command_line(tmp_path, shared_cache, capsys):
    from cemnist_baselines.registry import BUILTIN_METHODS

    lines = [check_against_references(_cli_run(tmp_path, shared_cache, "overlap", list(BUILTIN_METHODS)), "overlap"),
             check_against_references(_cli_run(tmp_path, shared_cache, "disjoint", ["mib"]), "disjoint")]
    with capsys.disabled():
        print("\n" + "\n".join(lines))

"""`cemnist-baselines progress`: per-task metrics of unfinished runs, read back from their checkpoints."""
from __future__ import annotations

import shutil

import pytest

from cemnist_baselines.cli import main as cli_main
from cemnist_baselines.registry import BUILTIN_METHODS
from cemnist_baselines.run_progress import run_progress


def test_progress_matches_the_results_and_flags_unfinished_runs(tmp_path, tiny_runs):
    src, res = tiny_runs
    out = tmp_path / "r"
    shutil.copytree(src, out)
    (out / "mib-2-2-overlap-seed0.json").unlink()          # as if mib had been interrupted after its last task
    for p in (out / "checkpoints" / "kd-2-2-overlap-seed0").glob("task[34].safetensors"):
        p.unlink()                                        # ... and kd after task 2
    entries = {e["stem"].split("-")[0]: e for e in run_progress(out)}
    assert sorted(entries) == sorted(BUILTIN_METHODS)
    assert entries["naive"]["finished"] and entries["joint"]["finished"] and not entries["mib"]["finished"]
    assert entries["naive"]["tasks_done"] == 5 and entries["joint"]["tasks_done"] == 1
    assert entries["kd"]["tasks_done"] == 3
    for m, e in entries.items():
        want = res[m]["steps"][: e["tasks_done"]]
        assert [s["miou_bg"] for s in e["task_records"]] == [s["miou_bg"] for s in want]
        assert [s["iou_per_label"] for s in e["task_records"]] == [s["iou_per_label"] for s in want]


def test_progress_cli(tiny_runs, capsys, tmp_path):
    src, res = tiny_runs
    assert cli_main(["progress", "--results", str(src)]) == 0
    text = capsys.readouterr().out
    assert "naive-2-2-overlap-seed0: 5 task(s) done, finished" in text
    assert f"after task 4: mIoU(bg) {res['naive']['steps'][4]['miou_bg']:.4f}" in text
    assert cli_main(["progress", "--results", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli_main(["progress", "--results", str(tmp_path / "empty")]) == 0
    assert "no run checkpoints found" in capsys.readouterr().out

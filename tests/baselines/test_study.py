"""The budget study's commands on tiny inputs: task-0 curves, their table and plot, the budgets table."""
from __future__ import annotations

import json

import pytest

from cemnist_baselines import study
from cemnist_baselines.config import get_config
from cemnist_baselines.runner import run_many


def test_task0_curve_scores_the_validation_pool_every_epoch(cemnist_cache):
    cfg = get_config("tiny", epochs=2, max_train=16, max_test=8, batch_size=8)
    r = study.task0_curve(cfg, seed=0)
    assert [p["epoch"] for p in r["curve"]] == [1, 2] and [p["step"] for p in r["curve"]] == [2, 4]
    assert all(0.0 <= p["miou_bg"] <= 1.0 and len(p["iou_per_label"]) == 3 for p in r["curve"])
    assert r["config"]["max_test"] == 8 and "validation pool" in r["eval"]


def test_study_cli_table_plot_and_budgets(tmp_path, cemnist_cache, capsys, monkeypatch):
    monkeypatch.setitem(study.GRID, "tiny-1", dict(schedule="onecycle", lr=3e-3, batch_size=8, epochs=1,
                                                   warmup=0.15, max_train=8, max_test=4))
    out = tmp_path / "t0"
    assert study.main(["task0", "--out", str(out), "--grid", "tiny-1", "--precision", "fp32"]) == 0
    (res,) = out.glob("*.json")
    assert res.name == "tiny-1-fp32-seed0.json" and json.loads(res.read_text())["name"] == "tiny-1"
    assert study.main(["task0", "--out", str(out), "--grid", "tiny-1", "--precision", "fp32"]) == 0  # resumes
    assert study.main(["table", "--results", str(out)]) == 0
    assert "| tiny-1 | fp32 | 0 |" in capsys.readouterr().out
    assert study.main(["plot", "--results", str(out), "--out", str(tmp_path / "c.png"), "--precision", "fp32"]) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert study.main(["task0", "--out", str(out), "--grid", "nope"]) == 2
    runs = tmp_path / "val"
    run_many(methods="naive", seeds=[0], cfg=get_config("tiny", epochs=1, max_train=8, max_test=4,
                                                          eval_split="validation"), out_dir=runs, preset="tiny",
             device="cpu", progress=False)
    capsys.readouterr()
    assert study.main(["budgets", "--runs", str(runs), "--out", str(tmp_path / "b.png")]) == 0
    assert "| 1 | 0.003 / 0.003 | naive | 0 |" in capsys.readouterr().out
    test_runs = tmp_path / "test"
    run_many(methods="naive", seeds=[0], cfg=get_config("tiny", epochs=1, max_train=8, max_test=4),
             out_dir=test_runs, preset="tiny", device="cpu", progress=False)
    assert study.main(["budgets", "--runs", str(test_runs)]) == 2       # the study never reads the test pool
    assert "reads validation runs only" in capsys.readouterr().err

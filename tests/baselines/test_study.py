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


def _row(epochs, method, miou_bg, *, old=0.5, new=0.5, miou=None, task0=0.86, lr_next=None):
    return {"epochs": epochs, "method": method, "seed": 0, "lr": 3e-3, "lr_next": lr_next, "task0_miou_bg": task0,
            "miou_bg": miou_bg, "miou": miou_bg if miou is None else miou, "old": old, "new": new,
            "forgetting_task": 0.0, "wall_s": 1.0}


def test_budget_verdicts_on_hand_built_rows():
    rows = [_row(4, "naive", 0.20), _row(4, "kd", 0.25), _row(4, "mib", 0.65, old=0.40),   # mib.old 0.10 below
            _row(8, "naive", 0.21), _row(8, "kd", 0.30), _row(8, "mib", 0.69, old=0.49),   # all within 0.02
            _row(32, "naive", 0.22), _row(32, "kd", 0.31), _row(32, "mib", 0.70),
            _row(8, "kd", 0.10, lr_next=3e-4)]                                             # other lr: left out
    v = {x["epochs"]: x for x in study.budget_verdicts(rows)}
    assert v[4]["worst"] == "mib.old" and abs(v[4]["worst_gap"] + 0.10) < 1e-9 and not v[4]["passes"]
    assert v[8]["passes"] and abs(v[8]["worst_gap"] + 0.01) < 1e-9 and v[8]["ranking"] == ["naive", "kd", "mib"]
    assert v[32]["passes"] and v[32]["worst_gap"] == 0.0
    # a swapped ranking fails even with small gaps; so does a task-0 below the bar
    swapped = [r | {"miou_bg": 0.305} if (r["epochs"], r["method"]) == (8, "naive") else r for r in rows]
    assert not {x["epochs"]: x for x in study.budget_verdicts(swapped)}[8]["same_ranking"]
    low = [r | {"task0_miou_bg": 0.80} if r["epochs"] == 8 else r for r in rows]
    assert not {x["epochs"]: x for x in study.budget_verdicts(low)}[8]["passes"]
    # the command prints the verdict table and the smallest passing budget below the longest
    import contextlib
    import io

    buf = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(buf):
        mp.setattr(study, "budget_table", lambda folders: rows)
        assert study.main(["budgets", "--runs", "unused"]) == 0
    printed = buf.getvalue()
    assert "| 4 | 0.860 | -0.100 (mib.old) | naive < kd < mib | no |" in printed
    (line8,) = [ln for ln in printed.splitlines() if ln.startswith("| 8 | 0.860 | -0.010 (")]
    assert line8.endswith(" | naive < kd < mib | yes |")
    assert printed.rstrip().endswith("smallest budget that meets the criterion: 8")
    with pytest.raises(ValueError, match="2 or more budgets"):
        study.budget_verdicts([r for r in rows if r["epochs"] == 8])
    with pytest.raises(ValueError, match=r"tol must be in \(0, 1\), got 2"):
        study.budget_verdicts(rows, tol=2)


def test_pod_scale_terms_sum_to_the_loss_and_grow_with_the_square_of_a_map(cemnist_cache):
    import torch


    from cemnist_baselines.registry import METHODS
    from cemnist_baselines.model import SimpleSegNet

    g = torch.Generator().manual_seed(0)
    old = SimpleSegNet(3, width=4, generator=torch.Generator().manual_seed(1)).eval()
    new = SimpleSegNet(5, width=4, generator=torch.Generator().manual_seed(2)).eval()
    x = torch.rand(2, 1, 60, 60, generator=g)
    y = torch.randint(0, 5, (2, 60, 60), generator=g)
    f = dict(pod_factor=METHODS["plop"].pod_factor, pod_logits_factor=METHODS["plop"].pod_logits_factor)
    r = study.pod_scale(old, new, x, y, c_old=3, **f)
    assert list(r["layers"]) == ["enc1.pre", "enc2.pre", "enc3.pre", "dec1.pre", "dec2", "logits"]
    with torch.no_grad():
        t, of = old.forward_features(x)
        z, nf = new.forward_features(x)
        want = METHODS["plop"].feature_loss(z, torch.full_like(y, 255), t, nf, of, c_old=3, kd_lambda=0.0, state={
            "plop.thresholds": torch.zeros(3), "plop.max_entropy": torch.tensor(1.0)})
    assert r["pod"] == pytest.approx(float(want), rel=1e-5)  # every pixel ignored: the loss is the POD term alone
    assert r["layers"]["dec2"]["rms_old"] == pytest.approx(float(of["dec2"].pow(2).mean().sqrt()), rel=1e-6)
    # scaling dec2's last conv by 3 in both models scales that map by 3, its squared POD term by 9
    for m in (old, new):
        with torch.no_grad():
            m.dec2[-1].weight.mul_(3)
            m.dec2[-1].bias.mul_(3)
    r3 = study.pod_scale(old, new, x, y, c_old=3, **f)
    assert r3["layers"]["dec2"]["pod"] == pytest.approx(9 * r["layers"]["dec2"]["pod"], rel=1e-4)
    assert r3["layers"]["enc1.pre"]["pod"] == pytest.approx(r["layers"]["enc1.pre"]["pod"], rel=1e-6)
    assert r3["layers"]["dec2"]["rms_new"] == pytest.approx(3 * r["layers"]["dec2"]["rms_new"], rel=1e-5)


def test_pod_scale_cli_reads_a_results_folders_checkpoints(tiny_runs, capsys):
    out, _ = tiny_runs
    assert study.main(["pod-scale", "--checkpoints", str(out / "checkpoints"), "--methods", "naive", "kd",
                       "--n", "8"]) == 0
    text = capsys.readouterr().out
    assert "| naive | " in text and "| kd | " in text and "| dec2 |" in text and "first 8 training images" in text
    # the board has seed 0 only: a seed without checkpoints names the run command that makes them
    assert study.main(["pod-scale", "--checkpoints", str(out / "checkpoints"), "--methods", "plop", "--seed", "1"]) == 2
    assert "run `cemnist-baselines run --method plop --seeds 1 --mode overlap" in capsys.readouterr().err
    assert study.main(["pod-scale", "--checkpoints", str(out / "checkpoints"), "--task", "0"]) == 2
    assert "--task must be >= 1" in capsys.readouterr().err


def test_prediction_shares_on_a_hand_built_confusion():
    import torch

    conf = torch.zeros(11, 11, dtype=torch.int64)
    conf[3, 0], conf[3, 1], conf[3, 3] = 2, 6, 2      # digit 2: 2 px -> bg, 6 -> digit 0, 2 -> itself
    conf[4, 2] = 10                                     # digit 3: all 10 -> digit 1
    sh = study.prediction_shares(conf, [2, 3])
    assert sh.tolist() == pytest.approx([0.1, 0.3, 0.5, 0.1, 0, 0, 0, 0, 0, 0, 0])
    assert study.prediction_shares(conf, [3])[2] == 1.0
    for bad, msg in (([10], "0..9"), ([], "non-empty"), ([5], "no pixels")):
        with pytest.raises(ValueError, match=msg):
            study.prediction_shares(conf, bad)


def test_where_cli_on_the_committed_board(capsys):
    from pathlib import Path

    board = Path(__file__).resolve().parents[2] / "results" / "v1"
    assert study.main(["where", "--results", str(board), "--method", "naive", "--mode", "disjoint", "--step", "0",
                       "--digits", "2", "3", "4", "5", "6", "7", "8", "9"]) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert [r.split(" | ")[0] for r in rows] == ["| 0", "| 1", "| 2"]
    for r in rows:  # the disjoint task-0 model calls most unseen digits 0 or 1 (it never saw them as background)
        cells = [float(c) for c in r.strip("| ").split(" | ")[1:]]
        assert sum(cells) == pytest.approx(1, abs=2e-3) and cells[1] + cells[2] > 0.8 and cells[0] < 0.15
    assert study.main(["where", "--results", str(board), "--method", "nope", "--digits", "1"]) == 2
    assert "no nope 2-2 overlap runs" in capsys.readouterr().err
    assert study.main(["where", "--results", str(board), "--method", "naive", "--step", "-1", "--digits", "1"]) == 2
    assert "--task must be >= 0, got -1" in capsys.readouterr().err


def test_budget_axis_note_names_what_the_runs_share():
    rows = [{"schedule": "onecycle", "batch_size": 32}, {"schedule": "onecycle", "batch_size": 32}]
    assert study.budget_axis_note(rows) == "onecycle, batch 32"
    rows.append({"schedule": "constant", "batch_size": 72})
    assert study.budget_axis_note(rows) == "constant/onecycle, batch 32/72"


def test_plop_threshold_report_is_find_median_with_its_inputs():
    import math

    import torch

    from cemnist_baselines.losses import plop_entropy, plop_thresholds
    from cemnist_baselines.model import SimpleSegNet

    old = SimpleSegNet(3, width=4, generator=torch.Generator().manual_seed(1)).eval()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 1, 60, 60, generator=g)
    bg = torch.rand(3, 60, 60, generator=g) < 0.7
    rows = study.plop_threshold_report(old, x, bg, n_classes=5)
    with torch.no_grad():
        logits = old(x)
    th, _ = plop_thresholds(logits, bg, n_classes=5)
    assert [r["plop_threshold"] for r in rows] == pytest.approx(th.tolist())
    assert sum(r["pixels"] for r in rows) == int(bg.sum())
    p = torch.softmax(logits, dim=1)
    ent, cls = (plop_entropy(p) / math.log(5))[bg], p.argmax(dim=1)[bg]
    for c, r in enumerate(rows):
        if r["pixels"]:
            assert r["median"] == pytest.approx(float(ent[cls == c].median()))
            assert r["first_bin_share"] == pytest.approx(float((ent[cls == c] < 0.01).float().mean()), abs=1e-9)

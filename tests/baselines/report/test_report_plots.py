"""The report's plots (cemnist_baselines.report.plots) and the result views they read, on synthetic results."""
import json

import numpy as np
import pytest

from png_checks import assert_nontrivial_png

from cemnist_baselines.leaderboard import aggregate
from cemnist_baselines.report.plots import method_style, plot_class_iou_heatmaps, plot_miou_curves
from cemnist_baselines.results import ResultError, format_pm, load_results, mean_std


def test_load_results_skips_other_json_and_names_damaged_results(results_dir, tmp_path):
    runs = load_results(results_dir)
    assert len(runs) == 6
    (tmp_path / "other.json").write_text('{"schema": "something-else"}')
    assert load_results(tmp_path) == []
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ResultError, match=r"broken.json: damaged result JSON"):
        load_results(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_results(tmp_path / "missing")


def test_miou_curves_match_jsons(results_dir, tmp_path):
    runs = load_results(results_dir)
    out = tmp_path / "curves.png"
    curves = plot_miou_curves(runs, out=out)
    assert list(curves) == ["naive", "kd", "mib"]  # fixed method order
    for method, c in curves.items():
        files = sorted(results_dir.glob(f"{method}-*.json"))
        vals = np.array([[s["miou_bg"] for s in json.loads(f.read_text())["steps"]] for f in files])
        np.testing.assert_allclose(c.mean, vals.mean(axis=0))
        np.testing.assert_allclose(c.std, vals.std(axis=0, ddof=1))
        assert (c.n == 2).all()
    assert curves["mib"].mean[-1] > curves["naive"].mean[-1]
    assert_nontrivial_png(out)
    other = plot_miou_curves(runs, metric="miou")
    assert not np.allclose(other["naive"].mean, curves["naive"].mean)
    with pytest.raises(ValueError, match="metric"):
        plot_miou_curves(runs, metric="accuracy")


def test_class_iou_heatmaps_match_jsons(results_dir, tmp_path):
    runs = load_results(results_dir)
    out = tmp_path / "heat.png"
    mats = plot_class_iou_heatmaps(runs, out=out)
    assert set(mats) == {"naive", "kd", "mib"}
    files = sorted(results_dir.glob("kd-*.json"))
    stack = np.array([[[np.nan if v is None else v for v in s["iou_per_label"]] for s in json.loads(f.read_text())["steps"]]
                      for f in files])  # [seeds, T, 11]
    expect = stack.mean(axis=0).T  # [11, T], rows in label order == class order 0..9 here
    np.testing.assert_allclose(mats["kd"], expect)
    assert np.isnan(mats["kd"][3, 0]) and np.isfinite(mats["kd"][3, 1])  # digit 2 unseen after task 1
    assert_nontrivial_png(out)
    nobg = plot_class_iou_heatmaps(runs, include_bg=False)
    assert nobg["kd"].shape == (10, 5)


def test_mixed_groups_rejected(results_dir):
    runs = load_results(results_dir)
    other = dict(runs[0], mode="disjoint")
    with pytest.raises(ValueError, match="mix several"):
        plot_miou_curves(runs + [other])


def test_single_stage_method_drawn_as_reference(results_dir, tmp_path):
    runs = load_results(results_dir)
    joint = json.loads(json.dumps(runs[0]))
    joint["method"] = "joint"
    joint["steps"] = [dict(joint["steps"][-1], miou_bg=0.95)]
    curves = plot_miou_curves(runs + [joint], out=tmp_path / "j.png")
    assert np.isnan(curves["joint"].mean[:-1]).all() and curves["joint"].mean[-1] == pytest.approx(0.95)
    assert list(curves)[-1] == "joint"


def test_leaderboard_rows(results_dir):
    runs = load_results(results_dir)
    rows = {r["method"]: r for r in aggregate(runs)}
    vals = [json.loads(f.read_text())["final"]["future_bg"]["miou_bg"] for f in sorted(results_dir.glob("mib-*.json"))]
    assert rows["mib"]["future_bg.miou_bg"] == pytest.approx(np.mean(vals))
    assert rows["mib"]["future_bg.miou_bg_std"] == pytest.approx(np.std(vals, ddof=1))
    assert rows["mib"]["n_seeds"] == 2
    assert mean_std([0.5]) == (0.5, None)
    assert format_pm(0.8531, 0.0123) == "85.3 ± 1.2"
    assert format_pm(float("nan"), 0.0) == "–"


def test_builtin_methods_keep_their_colour_in_every_picture():
    assert method_style("mib", 4) == method_style("mib", 3)  # overlap and disjoint list different subsets
    builtin = {m: method_style(m, 0)["color"] for m in ("naive", "kd", "ilt", "pl", "mib", "plop", "replay")}
    assert len(set(builtin.values())) == 7
    mine = method_style("my_package:Mine", 0)["color"]
    assert mine not in builtin.values() and method_style("joint", 5)["linestyle"] == "--"

"""Leaderboard aggregation, CSV/Markdown, quality-target checks and the CLI (issue 3 §5, §6, §8)."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from cemnist_baselines.cli import main
from cemnist_baselines.leaderboard import aggregate, load_results, mean_std, write_leaderboard
from cemnist_baselines.targets import Target, check_targets, load_targets

REQUIRED = ["method", "setting", "mode", "n_seeds"] + [
    c for m in ("final_miou_bg", "final_miou", "final_old", "final_new", "avg_inc_miou_bg", "forgetting",
                "task0_miou_bg") for c in (m, f"{m}_std")]


def _fake(method, seed, miou_bg, *, preset="default", old=0.5, forgetting=0.1):
    final = {"miou_bg": miou_bg, "miou": miou_bg - 0.05, "old": old, "new": 0.9, "old_bg": old + 0.05,
             "new_bg": 0.92, "avg_inc_miou_bg": miou_bg + 0.02, "avg_inc_miou": miou_bg, "forgetting_per_class": {},
             "forgetting": forgetting if method != "joint" else None, "task0_miou_bg": 0.9}
    return {"schema": "cemnist-baselines-result/1", "method": method, "seed": seed, "setting": "2-2", "mode": "overlap",
            "preset": preset, "config": {"epochs": 100}, "wall_time_per_task_s": [1.0] * 5, "final": final}


def _write(tmp: Path, results):
    for r in results:
        (tmp / f"{r['method']}-2-2-overlap-seed{r['seed']}-{r['preset']}.json").write_text(json.dumps(r))
    (tmp / "not-a-result.json").write_text(json.dumps({"schema": "other"}))


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([0.5, None]) == (0.5, None)
    assert mean_std([None]) == (None, None)


def test_aggregation_csv_and_markdown(tmp_path):
    res = [_fake("mib", s, v) for s, v in enumerate([0.80, 0.84, 0.88])]
    res += [_fake("naive", s, v, old=0.0) for s, v in enumerate([0.2, 0.22])]
    res += [_fake("joint", 0, 0.95), _fake("mib", 0, 0.5, preset="tiny")]
    _write(tmp_path, res)
    assert len(load_results(tmp_path)) == len(res)
    rows = aggregate(load_results(tmp_path))
    assert [(r["method"], r["preset"]) for r in rows] == [("naive", "default"), ("mib", "default"),
                                                          ("joint", "default"), ("mib", "tiny")]
    mib = rows[1]
    assert mib["n_seeds"] == 3 and mib["seeds"] == "0 1 2"
    assert mib["final_miou_bg"] == pytest.approx(0.84) and mib["final_miou_bg_std"] == pytest.approx(0.04)
    assert mib["final_miou"] == pytest.approx(0.79) and mib["task0_miou_bg"] == pytest.approx(0.9)
    assert rows[0]["final_old"] == 0.0 and rows[0]["final_miou_bg_std"] == pytest.approx(math.sqrt(2e-4))
    assert rows[2]["forgetting"] is None and rows[2]["final_miou_bg_std"] is None
    md, cs = write_leaderboard(tmp_path, command="cemnist-baselines leaderboard --results X")
    with open(cs) as f:
        table = list(csv.DictReader(f))
    assert all(c in table[0] for c in REQUIRED)
    assert float(table[1]["final_miou_bg"]) == pytest.approx(0.84) and table[2]["forgetting"] == ""
    assert "0.856" in table[1]["seed_reference_final_miou_bg"]
    text = md.read_text()
    assert "| mib | 2-2 | overlap | default | 3 | 0.840 ± 0.040 |" in text
    assert "cemnist-baselines leaderboard --results X" in text
    _write(tmp_path, [_fake("mib", 0, 0.1)])  # same seed twice in one group is refused
    (tmp_path / "dup.json").write_text(json.dumps(_fake("mib", 0, 0.3)))
    with pytest.raises(ValueError, match="duplicate seeds"):
        aggregate(load_results(tmp_path))


def test_targets_checker_passes_and_fails():
    targets = load_targets()
    assert {t.method for t in targets} == {"naive", "kd", "mib", "joint"}
    good = {"naive": {"final_old": 0.01, "task0_miou_bg": 0.9}, "kd": {"final_miou_bg": 0.65},
            "mib": {"final_miou_bg": 0.85}, "joint": {"final_miou_bg": 0.95}}

    def rows(d):
        return [dict(method=m, setting="2-2", mode="overlap", preset="default", **v) for m, v in d.items()]

    assert all(ok for _, _, ok, _ in check_targets(rows(good), targets))
    bad = json.loads(json.dumps(good))
    bad["naive"]["final_old"] = 0.3          # no visible forgetting
    bad["mib"]["final_miou_bg"] = 0.70       # below 0.80 but above kd
    failed = {(t.method, t.metric, t.op) for t, _, ok, _ in check_targets(rows(bad), targets) if not ok}
    assert failed == {("naive", "final_old", "max"), ("mib", "final_miou_bg", "min")}
    bad["kd"]["final_miou_bg"] = 0.9
    assert any(t.op == "above:kd" and not ok for t, _, ok, _ in check_targets(rows(bad), targets))
    assert not all(ok for _, _, ok, _ in check_targets(rows({"kd": good["kd"]}), targets))  # missing = failure


def test_cli_run_tiny_and_leaderboard(tmp_path, cemnist_cache, capsys):
    out = tmp_path / "r"
    rc = main(["run", "--method", "naive", "mib", "--seeds", "0", "--preset", "tiny", "--device", "cpu",
               "--out", str(out), "--epochs", "1", "--max-train", "16", "--max-test", "8", "--no-progress"])
    assert rc == 0
    assert sorted(p.name for p in out.glob("*.json")) == ["mib-2-2-overlap-seed0.json", "naive-2-2-overlap-seed0.json"]
    assert (out / "LEADERBOARD.md").exists() and (out / "leaderboard.csv").exists()
    r = json.loads((out / "mib-2-2-overlap-seed0.json").read_text())
    assert r["preset"] == "tiny" and r["config"]["max_train"] == 16
    assert main(["leaderboard", "--results", str(out), "--out", str(tmp_path / "lb")]) == 0
    assert "| naive | 2-2 | overlap | tiny | 1 |" in (tmp_path / "lb" / "LEADERBOARD.md").read_text()
    assert main(["targets", "--results", str(out), "--preset", "tiny"]) == 1  # tiny runs miss the targets
    capsys.readouterr()


def test_cli_errors(tmp_path, cemnist_cache, capsys):
    assert main(["run", "--method", "ewc", "--preset", "tiny", "--out", str(tmp_path)]) == 2
    assert "unknown method 'ewc'" in capsys.readouterr().err
    assert main(["run", "--method", "naive", "--seeds", "-3", "--preset", "tiny", "--out", str(tmp_path)]) == 2
    assert "seed must be an integer" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["run", "--method", "naive", "--preset", "tiny", "--device", "cuda", "--out", str(tmp_path)]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
    assert main(["leaderboard", "--results", str(tmp_path / "empty")]) == 2
    assert "no result JSON" in capsys.readouterr().err


@pytest.mark.parametrize("m, s, text", [(-1e-5, 2e-5, "0.000 ± 0.000"), (-0.0123, None, "-0.012"),
                                        (0.4996, 0.01, "0.500 ± 0.010"), (None, None, "—")])
def test_mean_std_cell_never_prints_negative_zero(m, s, text):
    from cemnist_baselines.leaderboard import _pm

    assert _pm(m, s) == text

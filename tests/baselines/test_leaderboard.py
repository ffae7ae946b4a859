"""Leaderboard rows keyed by protocol, CSV/Markdown, quality-target checks and the CLI (README, "Leaderboard")."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from cemnist_baselines.cli import main
from cemnist_baselines.config import TrainConfig, get_config
from cemnist_baselines.leaderboard import README_BEGIN, README_END, aggregate, splice_readme, write_leaderboard
from cemnist_baselines.metrics import task_metrics, summarize
from cemnist_baselines.results import RESULT_SCHEMA, ResultError, load_result, load_results, mean_std
from cemnist_baselines.targets import AmbiguousRowsError, check_targets, load_targets

TASKS = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


def _steps(quality: float) -> list[dict]:
    """Five steps whose every label has IoU ``quality`` (diagonal confusions, misses -> background)."""
    out = []
    for t in range(5):
        conf = torch.zeros(11, 11, dtype=torch.int64)
        conf[0, 0] = 1000
        for lab in range(1, 2 * t + 3):
            conf[lab, lab] = round(100 * quality)
            conf[lab, 0] = 100 - round(100 * quality)
        s = task_metrics(conf, list(range(2 * t + 3)))
        s.update(task=t, classes_seen=list(range(2 * t + 2)), epochs=1)
        out.append(s)
    return out


def _fake(method: str, seed: int, quality: float, *, cfg: TrainConfig | None = None, device: str = "cpu",
          preset: str = "default", data: str = "a" * 64) -> dict:
    cfg = cfg or get_config("default")
    steps = _steps(quality)
    summ = summarize(steps, TASKS)
    return {"schema": RESULT_SCHEMA, "method": method, "seed": seed, "setting": "2-2", "mode": cfg.mode,
            "preset": preset, "precision": cfg.precision, "config": cfg.to_dict(), "protocol": cfg.protocol(),
            "method_protocol": {}, "dataset": {"version": "1.0.0", "content_sha256": {"overlap-task4/test": data}},
            "evaluation": {"split": "test"}, "env": {"device": device, "num_threads": 1},
            "package_version": "1.0.0", "git_commit": "abc", "tasks": TASKS, "steps": steps, "R": summ["R"],
            "final": summ["final"], "wall_time_per_task_s": [1.0] * 5}


def _write(tmp: Path, results, *, other: bool = True) -> None:
    for i, r in enumerate(results):
        (tmp / f"{r['method']}-seed{r['seed']}-{i}.json").write_text(json.dumps(r))
    if other:
        (tmp / "not-a-result.json").write_text(json.dumps({"schema": "other"}))


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([0.5, None]) == (0.5, None)
    assert mean_std([None]) == (None, None)


def test_aggregation_csv_and_markdown(tmp_path):
    res = [_fake("mib", s, v) for s, v in enumerate([0.80, 0.84, 0.88])]
    res += [_fake("naive", s, v) for s, v in enumerate([0.2, 0.22])] + [_fake("joint", 0, 0.95)]
    _write(tmp_path, res)
    assert len(load_results(tmp_path)) == len(res)
    rows = aggregate(load_results(tmp_path))
    assert [r["method"] for r in rows] == ["naive", "mib", "joint"]
    mib = rows[1]
    assert mib["n_seeds"] == 3 and mib["seeds"] == "0 1 2"
    assert mib["future_bg.miou"] == pytest.approx(0.84) and mib["future_bg.miou_std"] == pytest.approx(0.04)
    assert mib["future_bg.first"] == pytest.approx(0.84) and mib["future_bg.later"] == pytest.approx(0.84)
    assert rows[0]["future_bg.miou_std"] == pytest.approx(math.sqrt(2e-4))
    md, cs = write_leaderboard(tmp_path, command="cemnist-baselines leaderboard --results X")
    with open(cs) as f:
        table = list(csv.DictReader(f))
    for c in ("method", "device", "precision", "protocol_id", "n_seeds", "future_bg.miou_bg", "future_ignore.miou_bg",
              "future_bg.forgetting_task", "future_bg.forgetting_class", "future_bg.first_bg", "future_bg.later"):
        assert c in table[0], c
    assert float(table[1]["future_bg.miou"]) == pytest.approx(0.84)
    text = md.read_text()
    assert "| mib | cpu | default | 3 | " in text and "0-1 first task" in text and "2-9 later tasks" in text
    assert "forgetting per task (Chaudhry)" in text and "View: future → ignored" in text
    assert "cemnist-baselines leaderboard --results X" in text


def test_overlap_sections_come_first_and_the_seed_reference_is_for_overlap_only(tmp_path):
    dis = get_config("default", mode="disjoint")
    res = [_fake("naive", 0, 0.2, cfg=dis), _fake("kd", 0, 0.3, cfg=dis), _fake("kd", 0, 0.3), _fake("naive", 0, 0.2)]
    rows = aggregate(res)
    assert [(r["mode"], r["method"]) for r in rows] == [("overlap", "naive"), ("overlap", "kd"),
                                                        ("disjoint", "naive"), ("disjoint", "kd")]
    assert rows[1]["seed_reference_final_miou_bg"] == "0.672 (λ=10)" and rows[3]["seed_reference_final_miou_bg"] == ""
    _write(tmp_path, res, other=False)
    md, _ = write_leaderboard(tmp_path, command="x")
    text = md.read_text()
    assert text.index("## 2-2 overlap") < text.index("## 2-2 disjoint")
    dis_part = text[text.index("## 2-2 disjoint"):]
    assert "| kd | cpu | default | 1 | " in dis_part and "0.672" not in dis_part and "0.672 (λ=10)" in text


def test_readme_tables_are_spliced_between_the_markers_only():
    rows = aggregate([_fake("naive", 0, 0.2), _fake("mib", 0, 0.8),
                      _fake("mib", 0, 0.7, cfg=get_config("default", mode="disjoint"))])
    text = f"# T\n\nabove\n{README_BEGIN}\nold table\n{README_END}\nbelow\n"
    out = splice_readme(text, rows)
    assert out.startswith("# T\n\nabove\n" + README_BEGIN) and out.endswith(README_END + "\nbelow\n")
    assert "old table" not in out and "| mib | cpu | default | 1 | 0.803 | 0.800 |" in out
    assert "### 2-2 overlap — protocol" in out and "### 2-2 disjoint — protocol" in out
    assert "#### View: future → ignored (MiB convention)" in out
    assert splice_readme(out, rows) == out                                          # idempotent
    for bad, found in ((text.replace(README_END, ""), "found 1 and 0"), (text + README_BEGIN, "found 2 and 1"),
                       (f"{README_END}\n{README_BEGIN}\n", "found 1 and 1")):
        with pytest.raises(ValueError, match=found):
            splice_readme(bad, rows)


def test_speed_options_share_a_row_protocol_values_split_rows(tmp_path):
    fast = get_config("default", compile=True, channels_last=False, teacher_cache=False, eval_batch_size=77)
    res = [_fake("kd", 0, 0.6), _fake("kd", 1, 0.62, cfg=fast)]                   # one row
    res += [_fake("kd", 2, 0.7, cfg=get_config("default", lr=1e-3))]             # another protocol
    res += [_fake("kd", 0, 0.65, device="cuda")]                                 # another device type
    res += [_fake("kd", 0, 0.66, data="b" * 64)]                                 # other data
    rows = aggregate(res)
    assert len(rows) == 4
    one = [r for r in rows if r["n_seeds"] == 2]
    assert len(one) == 1 and one[0]["seeds"] == "0 1" and one[0]["device"] == "cpu"
    assert {r["device"] for r in rows} == {"cpu", "cuda"}


def test_duplicate_seeds_in_one_row_are_refused(tmp_path):
    with pytest.raises(ValueError, match="duplicate seeds"):
        aggregate([_fake("mib", 0, 0.1), _fake("mib", 0, 0.3)])


def _rows(d: dict[str, float], **kw) -> list[dict]:
    return aggregate([_fake(m, s, q + 0.001 * s, **kw) for m, q in d.items() for s in range(3)])


def test_targets_checker_passes_and_fails():
    targets = load_targets()
    assert {t.method for t in targets} == {"naive", "kd", "mib", "joint", "ilt", "pl", "plop", "plop_tuned",
                                           "replay"}
    proto = get_config("default").protocol()
    # ilt ties lwf and plop ties mib: "atleast" passes on a tie
    good = _rows({"naive": 0.9, "kd": 0.9, "lwf": 0.9, "mib": 0.95, "joint": 0.97, "ilt": 0.9, "pl": 0.92,
                  "plop": 0.95, "plop_tuned": 0.95, "replay": 0.91})
    # naive's old classes are at 0.9 -> the forgetting target fails; everything else passes
    res = check_targets(good, targets, protocol=proto)
    failed = {(t.method, t.metric) for t, _, ok, _ in res if not ok}
    assert failed == {("naive", "future_bg.old")}
    bad = _rows({"naive": 0.0, "kd": 0.9, "mib": 0.5, "joint": 0.97})
    failed = {(t.method, t.metric, t.op) for t, _, ok, _ in check_targets(bad, targets, protocol=proto) if not ok}
    assert ("mib", "future_bg.miou_bg", "min") in failed and ("mib", "future_bg.miou_bg", "above:kd") in failed
    assert ("naive", "future_bg.old", "max") not in failed
    # the expected shape of the targets (cemnist_baselines/targets.csv): a tie fails "above" (pl = naive), a shortfall fails "atleast"
    shape = _rows({"naive": 0.5, "kd": 0.6, "lwf": 0.6, "mib": 0.8, "joint": 0.97, "ilt": 0.59, "pl": 0.5,
                   "plop": 0.79, "plop_tuned": 0.8, "replay": 0.51})
    res = {(t.method, t.op): (ok, msg) for t, _, ok, msg in check_targets(shape, targets, protocol=proto)}
    assert not res[("ilt", "atleast:lwf")][0] and "(need >= lwf's " in res[("ilt", "atleast:lwf")][1]
    assert res[("plop_tuned", "atleast:mib")][0] and res[("mib", "above:lwf")][0]
    assert res[("plop", "atleast:mib")] == (False, "plop.future_bg.first = 0.7900 (need >= mib's 0.8000)")
    assert not res[("pl", "above:naive")][0] and res[("replay", "above:naive")][0]
    # rows of another protocol are not looked at
    other = check_targets(good, targets, protocol=get_config("long").protocol())
    assert all(not ok and "no" in msg for _, _, ok, msg in other)


def test_targets_refuse_ambiguous_rows_naming_them():
    rows = _rows({"kd": 0.9}) + _rows({"kd": 0.9}, device="cuda")
    with pytest.raises(AmbiguousRowsError, match=r"kd: \[device cpu.*\[device cuda"):
        check_targets(rows, load_targets(), protocol=get_config("default").protocol())
    ok = check_targets(rows, load_targets(), protocol=get_config("default").protocol(), device="cuda")
    assert any(t.method == "kd" and v is not None for t, v, _, _ in ok)


def test_old_schema_and_damaged_results_are_refused_naming_the_file(tmp_path):
    old = _fake("mib", 0, 0.5)
    old["schema"] = "cemnist-baselines-result/1"
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(ResultError, match=r"old.json: result schema 'cemnist-baselines-result/1' is not supported: "
                                          r"schema 1 scored step t on task t's growing test split"):
        load_result(tmp_path / "old.json")
    future = dict(old, schema="cemnist-baselines-result/9")
    (tmp_path / "old.json").write_text(json.dumps(future))
    with pytest.raises(ResultError, match="unknown result schema 'cemnist-baselines-result/9'"):
        load_result(tmp_path / "old.json")
    partial = _fake("mib", 0, 0.5)
    del partial["method"]
    (tmp_path / "old.json").write_text(json.dumps(partial))
    with pytest.raises(ResultError, match=r"missing the keys \['method'\]"):
        load_result(tmp_path / "old.json")
    (tmp_path / "old.json").write_text(json.dumps(_fake("mib", 0, 0.5))[:300])
    with pytest.raises(ResultError, match=r"old.json: damaged result JSON"):
        load_results(tmp_path)


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
    assert "| naive | cpu | tiny | 1 |" in (tmp_path / "lb" / "LEADERBOARD.md").read_text()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_BEGIN}\n{README_END}\nend\n")
    assert main(["leaderboard", "--results", str(out), "--readme", str(readme)]) == 0
    assert "| naive | cpu | tiny | 1 |" in readme.read_text() and readme.read_text().startswith("intro\n")
    # the runs used --epochs 1 etc.: they are not the tiny preset's protocol, so targets find no row
    assert main(["targets", "--results", str(out), "--preset", "tiny"]) == 1
    assert "no 'naive' run with this protocol" in capsys.readouterr().out


@pytest.mark.parametrize("argv, err", [
    (["run", "--method", "ewc", "--preset", "tiny"], "unknown method 'ewc'"),
    (["run", "--method", "naive", "--seeds", "-3", "--preset", "tiny"], "seed must be an integer"),
    (["run", "--method", "naive", "--preset", "tiny", "--max-train", "0"], "max_train must be None (whole split) or an integer >= 1, got 0"),
    (["run", "--method", "naive", "--preset", "tiny", "--max-test", "-1"], "max_test must be None"),
    (["run", "--method", "naive", "--preset", "tiny", "--epochs", "0"], "epochs must be an integer >= 1, got 0"),
    (["run", "--method", "naive", "--preset", "tiny", "--amp", "--precision", "fp32"], "--amp contradicts"),
])
def test_cli_errors(tmp_path, cemnist_cache, capsys, argv, err):
    assert main(argv + ["--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert err in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.json"))


def test_cli_inputs_are_checked(tmp_path, capsys):
    assert main(["leaderboard", "--results", str(tmp_path / "empty")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["targets", "--results", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "e").mkdir()
    assert main(["targets", "--results", str(tmp_path / "e")]) == 2
    assert "no result JSON" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["targets", "--results", str(tmp_path / "e"), "--preset", "tinyy"])
    with pytest.raises(SystemExit):
        main(["targets", "--results", str(tmp_path / "e"), "--mode", "foo"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cli_cuda_without_cuda(tmp_path, cemnist_cache, capsys):
    assert main(["run", "--method", "naive", "--preset", "tiny", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.parametrize("m, s, text", [(-1e-5, 2e-5, "0.000 ± 0.000"), (-0.0123, None, "-0.012"),
                                        (0.4996, 0.01, "0.500 ± 0.010"), (None, None, "—")])
def test_mean_std_cell_never_prints_negative_zero(m, s, text):
    from cemnist_baselines.leaderboard import _pm

    assert _pm(m, s) == text

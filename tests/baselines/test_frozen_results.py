"""The published board (results/v1) is a frozen reference.

Fast: the committed runs are well-formed, their metrics recompute from their stored confusions, the
targets verdicts printed in ``results/v1/TARGETS.txt`` (overlap) and ``TARGETS-disjoint.txt`` are what
``cemnist-baselines targets`` gives today, and ``LEADERBOARD.md`` and the README's tables are what the
leaderboard command makes of the runs.
Slow: retraining naive seed 0 with the default protocol at the same CPU thread count reproduces the
committed JSON exactly on the same kind of machine (``same_machine_kind``: CPU model, kernel ISA, torch,
threads), and within ``compare``'s tolerance on another (~10 min on one core); the test prints which.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cemnist_baselines.config import TrainConfig, get_config
from cemnist_baselines.leaderboard import aggregate, splice_readme, to_markdown
from cemnist_baselines.metrics import recompute_task_metrics, summarize
from cemnist_baselines.results import load_results
from cemnist_baselines.targets import check_targets, load_targets

V1 = Path(__file__).resolve().parents[2] / "results" / "v1"
pytestmark = pytest.mark.skipif(not (V1 / "naive-2-2-overlap-seed0.json").exists(), reason="results/v1 not committed yet")


def test_committed_board_recomputes_from_its_confusions():
    runs = load_results(V1)
    assert len(runs) >= 4
    for r in runs:
        assert r["protocol"] == TrainConfig.from_dict(r["config"]).protocol()
        for s in r["steps"]:
            again = recompute_task_metrics(s["confusion"], s["classes_seen"])
            assert again["views"] == s["views"], (r["_path"], s["task"])
            assert sum(map(sum, s["confusion"])) == r["evaluation"]["num_pixels"] == 5000 * 3600
        plan = [len(r["tasks"]) - 1] if r["joint"] else None
        assert summarize(r["steps"], r["tasks"], seen_upto=plan) == {"R": r["R"], "final": r["final"]}


@pytest.mark.parametrize("mode, name", [("overlap", "TARGETS.txt"), ("disjoint", "TARGETS-disjoint.txt")])
def test_committed_targets_verdicts_are_reproducible(mode, name):
    rows = aggregate(load_results(V1))
    checks = check_targets(rows, load_targets(), protocol=get_config("default", mode=mode).protocol(), device="cpu")
    assert len(checks) == len(load_targets())
    text = "".join(("PASS " if ok else "FAIL ") + msg + "\n" for _, _, ok, msg in checks)
    assert text == (V1 / name).read_text()
    assert f"```\n{text}```\n" in (V1.parents[1] / "README.md").read_text(encoding="utf-8")   # README quotes it whole


def test_published_tables_are_the_committed_runs():
    """LEADERBOARD.md and the README's tables are what the leaderboard command makes of the committed JSONs."""
    rows = aggregate(load_results(V1))
    board = (V1 / "LEADERBOARD.md").read_text()
    assert board.split("\n", 4)[4] == to_markdown(rows).split("\n", 2)[2]   # the "Produced by" line aside
    readme = (V1.parents[1] / "README.md").read_text(encoding="utf-8")
    assert splice_readme(readme, rows) == readme


def test_reproductions_on_other_machines_are_the_board_runs_they_claim():
    """results/repro/<machine>/: re-runs of board runs, each naming its machine kind, with the board run's config,
    protocol and data; the numbers differ from the board's by less than compare's floor (0.03)."""
    from cemnist_baselines.artifacts import machine_label
    from cemnist_baselines.validate import validate_file

    repro = sorted((V1.parent / "repro").glob("*/*.json"))
    assert repro
    for p in repro:
        v = validate_file(p)
        assert v.ok, v.failures
        r = json.loads(p.read_text())
        board = json.loads((V1 / p.name).read_text())
        assert "cpu_model" in r["env"] and not machine_label(r["env"]).startswith("unrecorded")
        assert (r["config"], r["protocol"], r["dataset"]) == (board["config"], board["protocol"], board["dataset"])
        for s, b in zip(r["steps"], board["steps"]):
            assert abs(s["views"]["future_bg"]["miou_bg"] - b["views"]["future_bg"]["miou_bg"]) < 0.03
        assert p.parent.name in (V1.parent / "repro" / "README.md").read_text()


@pytest.mark.parametrize("mode, seed, same", [("overlap", 0, False), ("overlap", 1, True), ("overlap", 2, True),
                                              ("disjoint", 0, True), ("disjoint", 1, False), ("disjoint", 2, False)])
def test_which_committed_task0_models_share_a_machine_kind(mode, seed, same):
    """README, "What is identical where": kd's runs (AMD EPYC, env recorded) and mib's (env unrecorded) train the
    same task-0 model of a seed; where their step-0 confusions are equal the bits were, so the unrecorded runs of
    that seed came from the same machine kind."""
    kd = json.loads((V1 / f"kd-2-2-{mode}-seed{seed}.json").read_text())
    mib = json.loads((V1 / f"mib-2-2-{mode}-seed{seed}.json").read_text())
    assert "cpu_model" in kd["env"] and "cpu_model" not in mib["env"]
    assert (kd["steps"][0]["confusion"] == mib["steps"][0]["confusion"]) is same


@pytest.mark.slow
def test_default_naive_seed0_reproduces_the_committed_result(tmp_path, cemnist_cache, capsys):
    from cemnist_baselines.artifacts import machine_label, same_machine_kind
    from cemnist_baselines.targets import compare_boards
    from cemnist_baselines.trainer import run_one

    board_run = json.loads((V1 / "naive-2-2-overlap-seed0.json").read_text())
    repro = sorted((V1.parent / "repro").glob("*/naive-2-2-overlap-seed0.json"))  # the same run on other kinds
    refs = [board_run] + [json.loads(p.read_text()) for p in repro]
    threads = board_run["env"]["num_threads"]
    assert all(r["env"]["num_threads"] == threads and r["config"] == board_run["config"] for r in refs)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # CPU results are reproducible at the same thread count
    try:
        cfg = get_config("default")
        assert TrainConfig.from_dict(board_run["config"]).resolved("cpu") == cfg.resolved("cpu")
        res = run_one(method="naive", seed=0, cfg=cfg, out_dir=tmp_path, preset="default", device="cpu",
                      progress=False)
    finally:
        torch.set_num_threads(before)
    assert res["dataset"] == board_run["dataset"]
    ref = next((r for r in refs if same_machine_kind(res["env"], r["env"])), None)
    with capsys.disabled():
        if ref is not None:
            print(f"\nsame machine kind as a committed run ({machine_label(ref['env'])}, {threads} thread(s)): "
                  f"compared exactly")
        else:
            print(f"\nno committed run on this machine kind ({machine_label(res['env'])}; committed: "
                  f"{', '.join(machine_label(r['env']) for r in refs)}): compared within compare's tolerance "
                  f"max(3 x the board's seed std, 0.03)")
    if ref is not None:
        assert res["steps"] == ref["steps"]
        assert res["R"] == ref["R"] and res["final"] == ref["final"]
    else:
        board = {r["method"]: r for r in aggregate(load_results(V1)) if r["protocol"] == res["protocol"]}
        rerun = {r["method"]: r for r in aggregate([res])}
        assert compare_boards({"naive": board["naive"]}, rerun) == []
        t0, t0_ref = res["steps"][0]["views"], board_run["steps"][0]["views"]
        assert abs(t0["future_bg"]["miou_bg"] - t0_ref["future_bg"]["miou_bg"]) <= 0.03


def test_compare_boards_accepts_the_board_and_flags_a_moved_or_missing_row():
    from cemnist_baselines.targets import compare_boards

    protocol = get_config("default").protocol()
    cpu = {r["method"]: r for r in aggregate(load_results(V1)) if r["protocol"] == protocol}
    assert compare_boards(cpu, cpu) == []
    # mib's seed std on mIoU(bg) is 0.0334: 0.09 away is inside 3 std, 0.11 is not; naive (std 0.0025) gets the
    # 0.03 floor
    moved = {m: dict(r) for m, r in cpu.items()}
    moved["mib"]["future_bg.miou_bg"] += 0.09
    assert compare_boards(cpu, moved) == []
    moved["mib"]["future_bg.miou_bg"] += 0.02
    moved["naive"]["future_bg.first"] += 0.031
    del moved["replay"]
    assert compare_boards(cpu, moved) == [
        "replay: only on the reference board",
        f"mib future_bg.miou_bg: {cpu['mib']['future_bg.miou_bg'] + 0.11:.4f} against the reference "
        f"{cpu['mib']['future_bg.miou_bg']:.4f} (tolerance 0.100)",
        "naive future_bg.first: 0.0310 against the reference 0.0000 (tolerance 0.030)",
    ]
    with pytest.raises(ValueError, match="floor in"):
        compare_boards(cpu, cpu, floor=1.0)


def test_compare_cli_reports_a_rerun_against_the_board(tmp_path, capsys):
    import shutil

    from cemnist_baselines.cli import main

    rerun = tmp_path / "rerun"
    rerun.mkdir()
    for f in sorted(V1.glob("naive-2-2-overlap-seed*.json")) + sorted(V1.glob("mib-2-2-overlap-seed*.json")):
        shutil.copy(f, rerun / f.name)
    assert main(["compare", "--reference", str(V1), "--results", str(rerun), "--reference-device", "cpu",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    others = sorted({r["method"] for r in aggregate(load_results(V1)) if r["mode"] == "overlap"} - {"naive", "mib"})
    assert f"not in the re-run (not compared): {', '.join(others)}" in out and "lwf" in others
    assert out.rstrip().endswith("2 method(s) x 2 metric(s) compared: 0 difference(s) beyond max(3 x reference "
                                 "seed std, 0.03)")
    # the re-run's mib loses 40 % of digits 2-9 to background at the last step: named, exit 1. (compare
    # reads validated results only, so the worse re-run is a consistent one: its confusion changed, its numbers
    # recomputed from it; editing a final number alone is refused, exit 2.)
    from cemnist_baselines.metrics import recompute_task_metrics, summarize

    for f in rerun.glob("mib-*.json"):
        r = json.loads(f.read_text())
        last = r["steps"][-1]
        for lab in range(3, 11):
            k = last["confusion"][lab][lab] * 2 // 5
            last["confusion"][lab][lab] -= k
            last["confusion"][lab][0] += k
        last.update(recompute_task_metrics(last["confusion"], last["classes_seen"]))
        summ = summarize(r["steps"], r["tasks"])
        r["R"], r["final"] = summ["R"], summ["final"]
        f.write_text(json.dumps(r))
    assert main(["compare", "--reference", str(V1), "--results", str(rerun)]) == 1
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("DIFF ")]
    assert line.startswith("DIFF mib future_bg.miou_bg: ") and "against the reference 0.7062 (tolerance 0.100)" in line
    consistent = (rerun / "mib-2-2-overlap-seed0.json").read_text()
    r = json.loads(consistent)
    r["final"]["future_bg"]["miou_bg"] -= 0.2
    (rerun / "mib-2-2-overlap-seed0.json").write_text(json.dumps(r))
    assert main(["compare", "--reference", str(V1), "--results", str(rerun)]) == 2
    assert "mib-2-2-overlap-seed0.json: does not validate (metrics: final.future_bg.miou_bg" in capsys.readouterr().err
    (rerun / "mib-2-2-overlap-seed0.json").write_text(consistent)
    assert main(["compare", "--reference", str(V1), "--results", str(rerun), "--metrics", "miou"]) == 2
    assert "'miou' is not a leaderboard column" in capsys.readouterr().err
    assert main(["compare", "--reference", str(V1), "--results", str(rerun), "--mode", "disjoint"]) == 2
    assert "no run with the default protocol on 2-2 disjoint" in capsys.readouterr().err
    assert main(["compare", "--reference", str(V1), "--results", str(rerun), "--device", "cuda"]) == 2
    assert "no run with the default protocol on 2-2 overlap on device cuda" in capsys.readouterr().err

"""`cemnist-baselines export` writes a Hub model repo folder whose score goes to the benchmark (README,
"Results on the Hub (eval results)").

Against the committed board runs (results/v1) with a final checkpoint written for them here (random weights:
the export's checks bind a checkpoint to its run by config, method, seed and every step's confusion), and
against RecordingHfApi (tests/fake_hub.py) for --push: never the network.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from fake_hub import RecordingHfApi, connect_error
from safetensors.torch import load_file

from cemnist_baselines.checkpoints import save_checkpoint
from cemnist_baselines.cli import main
from cemnist_baselines.export import benchmark_problems, export_run, push_model_repo, reproduce_command
from cemnist_baselines.model import SimpleSegNet

V1 = Path(__file__).resolve().parents[2] / "results" / "v1"
RUNS = [V1 / f"naive-2-2-overlap-seed{s}.json" for s in (0, 1, 2)]
pytestmark = pytest.mark.skipif(not all(p.is_file() for p in RUNS), reason="results/v1 lacks the naive overlap runs")


def _write_final_checkpoint(run_json: Path, *, generator_seed: int = 0) -> dict:
    """A final checkpoint for a committed run, where `run` would have written it (weights: a seeded init)."""
    r = json.loads(run_json.read_text())
    model = SimpleSegNet(11, width=r["config"]["width"], generator=torch.Generator().manual_seed(generator_seed))
    path = run_json.parent / "checkpoints" / run_json.stem / f"task{len(r['steps']) - 1}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model_state=model.state_dict(), extra={}, config=r["config"],
                    progress={"steps": r["steps"], "wall_time_per_task_s": r["wall_time_per_task_s"],
                              "shared_task0": r["shared_task0"], "num_classes": 11, "method": r["method"],
                              "seed": r["seed"]})
    return model.state_dict()


@pytest.fixture()
def board(tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the naive overlap row (3 seeds) plus one kd run, with seed 0's final checkpoint."""
    folder = tmp_path / "board"
    folder.mkdir()
    for p in RUNS + [V1 / "kd-2-2-overlap-seed0.json"]:
        shutil.copy(p, folder / p.name)
    state = _write_final_checkpoint(folder / RUNS[0].name)
    return folder, state


def test_export_writes_a_model_repo_with_eval_results(board, tmp_path: Path) -> None:
    folder, state = board
    out = tmp_path / "naive-repo"
    repo = export_run(folder / RUNS[0].name, out)
    run = json.loads(RUNS[0].read_text())
    assert repo.files == [".eval_results/cemnist.yaml", "README.md", "config.json", "model.safetensors",
                          "results/naive-2-2-overlap-seed0.json", "results/naive-2-2-overlap-seed1.json",
                          "results/naive-2-2-overlap-seed2.json"]  # the row's seeds, not the kd run beside them
    weights = load_file(str(out / "model.safetensors"))
    assert set(weights) == set(state) and all(torch.equal(weights[k], state[k]) for k in state)
    cfg = json.loads((out / "config.json").read_text())
    model = SimpleSegNet(cfg["num_classes"], width=cfg["width"])
    model.load_state_dict(weights)
    assert cfg["channel_to_label"] == list(range(11)) and cfg["id2label"]["3"] == "digit_2"
    # .eval_results in the documented schema: a list of {dataset: {id, task_id}, value, notes}
    entries = yaml.safe_load((out / ".eval_results" / "cemnist.yaml").read_text())
    assert entries == repo.eval_results and len(entries) == 1
    e = entries[0]
    assert e["dataset"] == {"id": "cemnist/cemnist", "task_id": "final_miou_bg_overlap"}
    assert e["value"] == round(run["final"]["future_bg"]["miou_bg"], 4) and "source" not in e
    assert "over seeds 0 1 2" in e["notes"] and "CEMNIST 1.0.0" in e["notes"]
    try:
        from huggingface_hub import parse_eval_result_entries
    except ImportError:  # huggingface_hub before the eval-results helpers
        parse_eval_result_entries = None
    if parse_eval_result_entries is not None:
        parsed = parse_eval_result_entries(entries)
        assert parsed[0].dataset_id == "cemnist/cemnist" and parsed[0].task_id == "final_miou_bg_overlap"
        assert parsed[0].value == e["value"]
    # the task id is one of the benchmark's eval.yaml tasks
    from cemnist_data.card import eval_yaml
    from cemnist_data.registry import load_manifest

    assert e["dataset"]["task_id"] in [t["id"] for t in eval_yaml(load_manifest("1.0.0"))["tasks"]]
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["datasets"] == ["cemnist/cemnist"] and "naive" in meta["tags"] and meta["license"]
    assert "| mIoU (bg) — benchmark task `final_miou_bg_overlap` | 0.219 | 0.218 ± 0.003 |" in card
    assert "cemnist-baselines run --method naive --seeds 0 --out runs/naive" in card
    assert "mean ± std over seeds 0 1 2" in card and "83,915 parameters" in card


def test_export_from_a_folder_chooses_a_row_and_the_cli(board, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = board
    with pytest.raises(ValueError, match=r"holds 2 leaderboard rows; choose one with --method .*naive overlap.*kd overlap"):
        export_run(folder, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    repo = export_run(folder, tmp_path / "y", method="naive")
    assert repo.run["seed"] == 0 and len(repo.group) == 3
    assert main(["export", str(folder), "--method", "naive", "--seed", "1", "--out", str(tmp_path / "z")]) == 2
    assert "final checkpoint" in capsys.readouterr().err  # seed 1 has no checkpoint: named, with the rerun command
    assert main(["export", str(folder), "--method", "naive", "--out", str(tmp_path / "z")]) == 0
    out = capsys.readouterr().out
    assert "eval result: cemnist/cemnist task final_miou_bg_overlap = 0.2" in out


def test_export_refuses_what_it_cannot_vouch_for(board, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = board
    run0 = folder / RUNS[0].name
    # a folder of the user's: nothing is written over
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")
    with pytest.raises(ValueError, match="is not empty and is not an earlier export"):
        export_run(run0, mine)
    assert (mine / "README.md").read_text() == "my notes"
    # an earlier export needs --overwrite
    export_run(run0, tmp_path / "e")
    assert main(["export", str(run0), "--out", str(tmp_path / "e")]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["export", str(run0), "--out", str(tmp_path / "e"), "--overwrite"]) == 0
    # a checkpoint of another run is not exported as this run's model
    ck = folder / "checkpoints" / run0.stem / "task4.safetensors"
    _write_final_checkpoint(folder / RUNS[1].name)
    shutil.copy(folder / "checkpoints" / RUNS[1].stem / "task4.safetensors", ck)
    with pytest.raises(ValueError, match="is not the final checkpoint of .*rerun the run: cemnist-baselines run --method naive"):
        export_run(run0, tmp_path / "f")
    ck.unlink()
    with pytest.raises(FileNotFoundError, match=r"final checkpoint .*task4.safetensors .* is not there.*--checkpoints"):
        export_run(run0, tmp_path / "g")
    # a run that does not validate is refused, naming the check
    bad = json.loads(run0.read_text())
    bad["final"]["future_bg"]["miou_bg"] = 0.99
    (folder / run0.name).write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="does not validate, so it is not exported: metrics"):
        export_run(run0, tmp_path / "h")


def test_benchmark_problems_and_the_reproduce_command() -> None:
    run = json.loads(RUNS[0].read_text())
    assert benchmark_problems(run) == []
    sub = json.loads(RUNS[0].read_text())
    sub["config"]["max_test"], sub["evaluation"]["num_images"] = 16, 16
    assert benchmark_problems(sub) == ["evaluated on 16 of the pool's 5000 images (--max-test)"]
    val = json.loads(RUNS[0].read_text())
    val["evaluation"]["split"] = "validation"
    assert "evaluated on the validation pool (the benchmark: the test pool)" in benchmark_problems(val)
    other = json.loads(RUNS[0].read_text())
    other["protocol"].update(epochs=2, max_train=16, amp_bf16=False)
    other["mode"], other["preset"], other["method_source"] = "disjoint", "tiny", "my_pkg.mod:MyKD"
    assert reproduce_command(other).startswith("cemnist-baselines run --method my_pkg.mod:MyKD --seeds 0 --preset tiny "
                                               "--mode disjoint")


def test_push_goes_through_huggingface_hub_to_a_model_repo(board, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from cemnist_data import publish

    folder, _ = board
    api = RecordingHfApi()
    api.add_repo("alice/cemnist-naive", repo_type="model", files={".eval_results/old.yaml": b"- stale", "notes.md": b"x"})
    monkeypatch.setattr(publish, "default_api", lambda: api)
    out = tmp_path / "pushed"
    assert main(["export", str(folder / RUNS[0].name), "--out", str(out), "--push", "alice/cemnist-naive"]) == 0
    assert "pushed to https://huggingface.co/alice/cemnist-naive (commit " in capsys.readouterr().out
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][1] == {"repo_id": "alice/cemnist-naive", "repo_type": "model", "exist_ok": True, "private": None}
    files = api.repos[("model", "alice/cemnist-naive")]["files"]
    assert sorted(files) == sorted(["notes.md"] + [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()])
    entry = yaml.safe_load(files[".eval_results/cemnist.yaml"])[0]
    assert entry["source"]["url"] == ("https://huggingface.co/alice/cemnist-naive/blob/main/results/"
                                      "naive-2-2-overlap-seed0.json")
    # an unreachable network: one line, exit 1, and the folder stays written
    api = RecordingHfApi(fail={"create_repo": connect_error()})
    monkeypatch.setattr(publish, "default_api", lambda: api)
    assert main(["export", str(folder / RUNS[0].name), "--out", str(out), "--overwrite", "--push", "alice/x"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach the Hub (Connect" in err and "nothing was uploaded" in err
    with pytest.raises(publish.HubError, match="uploading .* no commit was made"):
        push_model_repo(out, "alice/x", api=RecordingHfApi(fail={"upload_folder": connect_error()}))


def test_a_run_on_a_subset_of_the_pool_is_exported_without_eval_results(cemnist_cache, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    assert main(["run", "--method", "naive", "--preset", "tiny", "--epochs", "1", "--max-train", "16", "--max-test", "8",
                 "--out", str(runs), "--quiet"]) == 0
    capsys.readouterr()
    out = tmp_path / "repo"
    assert main(["export", str(runs / "naive-2-2-overlap-seed0.json"), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "is not a CEMNIST benchmark result (evaluated on 8 of the pool's 5000 images (--max-test))" in err
    assert not (out / ".eval_results").exists() and (out / "model.safetensors").is_file()
    card = (out / "README.md").read_text()
    assert "**Not a benchmark result**, so this repo has no `.eval_results/` file" in card
    assert "cemnist-baselines run --method naive --seeds 0 --preset tiny --epochs 1 --max-train 16 --max-test 8" in card


def test_the_board_is_a_hub_dataset_folder_with_structs(board, tmp_path: Path) -> None:
    """The run table (results.parquet + README.md): a card with licence, pretty name and tags; protocol and tasks
    are a struct and lists, not JSON strings."""
    import datasets

    from cemnist_baselines.leaderboard import write_results_table
    from cemnist_baselines.results import load_results

    folder, _ = board
    out = tmp_path / "table"
    write_results_table(load_results(folder), out)
    meta = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    assert meta["license"] == "mit" and meta["pretty_name"].startswith("CEMNIST baselines") and "leaderboard" in meta["tags"]
    ds = datasets.load_dataset(str(out), split="train")
    assert isinstance(ds.features["protocol"], dict) and ds.features["protocol"]["epochs"] == datasets.Value("int64")
    row = ds[0]
    run = json.loads((folder / f"{row['method']}-2-2-overlap-seed{row['seed']}.json").read_text())
    assert row["protocol"]["lr"] == run["protocol"]["lr"] and row["protocol"]["schedule"] == "onecycle"
    assert row["tasks"] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    (out / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n\n# Mine\n")  # a README's own values are kept
    write_results_table(load_results(folder), out)
    text = (out / "README.md").read_text()
    assert text.startswith("---\nlicense: cc-by-4.0\nconfigs:") and text.endswith("# Mine\n") and "pretty_name:" in text


def test_the_committed_worked_example_is_consistent() -> None:
    from cemnist_baselines.artifacts import read_safetensors
    from cemnist_baselines.validate import validate_file

    ex = Path(__file__).resolve().parents[2] / "examples" / "export" / "kd-2-2-overlap-seed0"
    run = json.loads((ex / "results" / "kd-2-2-overlap-seed0.json").read_text())
    entry = yaml.safe_load((ex / ".eval_results" / "cemnist.yaml").read_text())[0]
    assert entry["dataset"] == {"id": "cemnist/cemnist", "task_id": "final_miou_bg_overlap"}
    assert entry["value"] == round(run["final"]["future_bg"]["miou_bg"], 4)
    tensors, meta = read_safetensors(ex / "model.safetensors", what="model")  # checks the recorded SHA-256
    assert meta["run_id"] == run["run_id"] and meta["method"] == "kd"
    cfg = json.loads((ex / "config.json").read_text())
    SimpleSegNet(cfg["num_classes"], width=cfg["width"]).load_state_dict(tensors)
    for p in sorted((ex / "results").glob("*.json")):
        assert validate_file(p).ok, p
    card = (ex / "README.md").read_text()
    assert f"benchmark task `final_miou_bg_overlap` | {run['final']['future_bg']['miou_bg']:.3f} |" in card
    assert "cemnist-baselines run --method kd --seeds 0 --out runs/kd" in card

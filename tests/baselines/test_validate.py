"""``cemnist-baselines validate``: good runs pass, each kind of tampering is caught with one line per failed
check; ``leaderboard`` takes several folders, refuses invalid files with the reason, and writes a run table
that ``datasets.load_dataset`` reads."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from cemnist_baselines.cli import main
from cemnist_baselines.validate import validate_file, validate_result

V1 = Path(__file__).resolve().parents[2] / "results" / "v1"


@pytest.fixture(scope="module")
def good_runs(tmp_path_factory, tiny_runs):
    """The tiny board's naive and replay results (tests/baselines/conftest.py), copied into a folder of their
    own: (folder, naive result, replay result). Both have a custom protocol (the tiny preset with fewer images)."""
    import shutil

    src, res = tiny_runs
    out = tmp_path_factory.mktemp("good")
    for m in ("naive", "replay"):
        shutil.copy(src / f"{m}-2-2-overlap-seed0.json", out / f"{m}-2-2-overlap-seed0.json")
    return out, _clean(res["naive"]), _clean(res["replay"])


def _clean(r):
    return {k: v for k, v in copy.deepcopy(r).items() if k != "_path"}


@pytest.mark.skipif(not (V1 / "naive-2-2-overlap-seed0.json").exists(), reason="results/v1 has no runs yet")
def test_good_runs_pass_with_their_preset_or_custom_protocol(good_runs):
    out, tiny, replay = good_runs
    v = validate_file(out / "naive-2-2-overlap-seed0.json")
    assert v.ok and v.notes == ["custom protocol"], v.failures
    v = validate_file(out / "replay-2-2-overlap-seed0.json")
    assert v.ok and v.notes == ["custom protocol"], v.failures
    # a run with a named preset's protocol says so: the committed board runs are the default preset's
    v = validate_file(V1 / "naive-2-2-overlap-seed0.json")
    assert v.ok and v.notes == ["preset default"], v.failures


def _tampered(r, edit):
    d = _clean(r)
    edit(d)
    return validate_result(d, name="x.json")


def _set(path, value):
    def edit(d):
        obj = d
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value(obj[path[-1]]) if callable(value) else value
    return edit


@pytest.mark.parametrize("what, edit, check, detail", [
    ("changed hash", lambda d: d["dataset"]["content_sha256"].update({"overlap-task2/train": "0" * 64}),
     "dataset", "content hash of overlap-task2/train is 000000000000…"),
    ("dataset version", _set(["dataset", "version"], "0.9.0"), "dataset", "version '0.9.0' is not the release's"),
    ("edited final metric", _set(["final", "future_bg", "miou_bg"], lambda x: x + 0.01), "metrics",
     "final.future_bg.miou_bg"),
    ("edited step metric", lambda d: d["steps"][2]["views"]["future_ignore"].update(miou=0.5), "metrics",
     "steps[2].views.future_ignore.miou = 0.5"),
    ("edited R", lambda d: d["R"]["future_bg"][3].__setitem__(0, 0.99), "metrics", "R.future_bg[3][0] = 0.99"),
    ("wrong protocol value", _set(["protocol", "epochs"], 3), "protocol",
     "protocol differs from the config's in ['epochs']"),
    ("wrong kd_lambda", _set(["protocol", "kd_lambda"], 1.0), "protocol", "['kd_lambda']"),
    ("built-in method constants", _set(["method_protocol"], {"memory_size": 10}), "protocol",
     "is not the built-in 'naive'"),
    ("truncated confusion", lambda d: d["steps"][1]["confusion"][0].__setitem__(0, d["steps"][1]["confusion"][0][0] - 100),
     "confusion", "steps[1].confusion sums to"),
    ("confusion row cut", lambda d: d["steps"][1]["confusion"].pop(), "schema", "steps[1].confusion must be an 11x11"),
    ("missing step", lambda d: d["steps"].pop(), "confusion", "4 steps, expected 5"),
    ("negative count", lambda d: d["steps"][0]["confusion"][0].__setitem__(1, -1), "confusion", "non-negative"),
    ("pool size", _set(["evaluation", "num_pixels"], 1), "confusion", "the pool gives 8 / 28800"),
    ("config and protocol changed together", lambda d: (d["protocol"].update(epochs=3), d["config"].update(epochs=3)),
     "run_id", "is not the hash of method, seed, config"),
    ("schema version", _set(["schema"], "cemnist-baselines-result/9"), "schema", "unknown result schema"),
])
def test_each_kind_of_tampering_is_rejected(good_runs, what, edit, check, detail):
    _, tiny, _ = good_runs
    v = _tampered(tiny, edit)
    assert not v.ok, what
    hit = [f for f in v.failures if f.startswith(check + ":")]
    assert hit and detail in hit[0], (what, v.failures)
    assert all(line.startswith("FAIL x.json: ") for line in v.lines())


def test_cli_validate_exit_codes_and_lines(good_runs, tmp_path, capsys):
    out, tiny, _ = good_runs
    assert main(["validate", str(out)]) == 0
    text = capsys.readouterr().out
    assert "OK   " in text and "2 of 2 result(s) valid" in text
    bad = _clean(tiny)
    bad["final"]["future_bg"]["miou_bg"] += 0.1
    bad["dataset"]["content_sha256"]["overlap-task0/train"] = "f" * 64
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "broken.json").write_text("{not json")
    assert main(["validate", str(tmp_path / "bad.json"), str(tmp_path / "broken.json"),
                 str(out / "naive-2-2-overlap-seed0.json")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[1].strip() for ln in lines if ln.startswith("FAIL") and "bad.json" in ln] == ["dataset", "metrics", "run_id"]
    assert any(ln.startswith("FAIL") and "broken.json: schema: not a readable JSON result" in ln for ln in lines)
    assert lines[-1] == "1 of 3 result(s) valid"
    assert main(["validate", str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_leaderboard_takes_several_folders_refuses_invalid_files_and_writes_a_loadable_table(good_runs, tmp_path, capsys):
    out, tiny, replay = good_runs
    other = tmp_path / "theirs"
    other.mkdir()
    forged = _clean(replay)
    forged["seed"] = 7  # a second seed, whose run id no longer matches
    (other / "replay-2-2-overlap-seed7.json").write_text(json.dumps(forged))
    board = tmp_path / "board"
    assert main(["leaderboard", "--results", str(out), str(other)]) == 2
    assert "several --results folders" in capsys.readouterr().err
    assert main(["leaderboard", "--results", str(out), str(other), "--out", str(board)]) == 1
    cap = capsys.readouterr()
    assert "refused " in cap.err and "replay-2-2-overlap-seed7.json: run_id:" in cap.err
    md = (board / "LEADERBOARD.md").read_text()
    assert "| naive | cpu | tiny | 1 |" in md and "| replay | cpu | tiny | 1 |" in md
    csv_head = (board / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert {"package_version", "git_commit", "method"} <= set(csv_head)

    import datasets

    ds = datasets.load_dataset(str(board))["train"]
    assert ds.num_rows == 2 and sorted(ds["method"]) == ["naive", "replay"]
    row = ds[ds["method"].index("naive")]
    assert row["run_id"] == tiny["run_id"] and row["package_version"] == tiny["package_version"]
    assert row["future_bg.miou_bg"] == pytest.approx(tiny["final"]["future_bg"]["miou_bg"])
    assert len(row["steps_miou_bg"]) == 5 and json.loads(row["method_protocol"]) == {}
    assert json.loads(ds[ds["method"].index("replay")]["method_protocol"]) == {"memory_size": 100, "per_batch": 8}
    # a README the folder already has keeps its text; its YAML header gains the table config
    (board / "README.md").write_text("---\nlicense: mit\n---\n\n# My board\n")
    from cemnist_baselines.leaderboard import write_results_table
    from cemnist_baselines.results import load_results

    write_results_table(load_results(out), board)
    text = (board / "README.md").read_text()
    assert text.startswith("---\nlicense: mit\nconfigs:") and text.endswith("# My board\n")


def test_leaderboard_with_only_invalid_files_is_an_error(good_runs, tmp_path, capsys):
    _, tiny, _ = good_runs
    bad = _clean(tiny)
    bad["protocol"]["lr"] = 1.0
    (tmp_path / "naive-2-2-overlap-seed0.json").write_text(json.dumps(bad))
    assert main(["leaderboard", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "protocol: protocol differs from the config's in ['lr']" in err and "no valid result JSON" in err


@pytest.mark.skipif(not list(V1.glob("*-seed*.json")), reason="results/v1 has no runs yet")
def test_committed_runs_validate():
    from cemnist_baselines.validate import result_files

    for p in result_files([V1]):
        v = validate_file(p)
        assert v.ok, v.failures

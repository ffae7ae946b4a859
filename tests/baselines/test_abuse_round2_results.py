"""Misuse cases of the second round on results folders: the board's README, one writer per run, one
validating loader for every reader, what a row is keyed by, FIFOs and /dev/zero, absurdly nested JSON.

Each test is a row of docs/RELIABILITY.md ("Misuse cases, second round: results folders"); its docstring
says what it showed on the code before the fix (commit bb5a74a). Only the two tests that must train (the
board ``run`` writes, a plug-in's NaN) run tiny one-run trainings; the rest reuse ``tiny_runs`` and
``results/v1``.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from cemnist_baselines.cli import main as cli_main
from cemnist_baselines.methods import Method
from cemnist_baselines.run_progress import run_progress
from cemnist_baselines.validate import validate_file

ROOT = Path(__file__).resolve().parents[2]
V1 = ROOT / "results" / "v1"
Q = ["--preset", "tiny", "--epochs", "1", "--max-train", "16", "--max-test", "8", "--no-progress", "--device", "cpu"]


def _jsons(src: Path, dst: Path, pattern: str = "*.json") -> Path:
    """Copy the result JSONs of ``src`` matching ``pattern`` into a new folder ``dst``."""
    dst.mkdir(parents=True)
    for p in sorted(src.glob(pattern)):
        shutil.copy(p, dst / p.name)
    return dst


def _edit(path: Path, edit) -> None:
    d = json.loads(path.read_text())
    edit(d)
    path.write_text(json.dumps(d, indent=1))  # json's default allow_nan=True writes a bare NaN


# --- 2. the board's README.md is merged into, never replaced; a README it cannot use is refused first ------

def test_a_users_front_matter_and_comments_are_kept(tmp_path, tiny_runs, capsys):
    """Before: the front matter was re-dumped by PyYAML, so the comment and the user's key order were gone."""
    r = _jsons(tiny_runs[0], tmp_path / "r")
    mine = "---\n# my own notes\nlicense: apache-2.0  # not MIT\nfoo: [1, 2]\n---\n\nMy text.\n"
    (r / "README.md").write_text(mine)
    assert cli_main(["leaderboard", "--results", str(r)]) == 0
    text = (r / "README.md").read_text()
    assert text.startswith("---\n# my own notes\nlicense: apache-2.0  # not MIT\nfoo: [1, 2]\n"), text[:200]
    assert text.endswith("---\n\nMy text.\n")
    import yaml

    header = yaml.safe_load(text.split("---\n")[1])
    assert header["license"] == "apache-2.0" and header["foo"] == [1, 2]
    assert header["configs"][0]["data_files"][0]["path"] == "results.parquet"
    # a card the tool wrote is kept byte for byte (results/v1's README, and a fresh one)
    from cemnist_baselines.leaderboard import table_readme

    card = (V1 / "README.md").read_text()
    assert table_readme(card, path=V1 / "README.md") == card
    assert table_readme(table_readme(None, path=r), path=r) == table_readme(None, path=r)


def test_a_readme_with_its_own_configs_is_refused_untouched(tmp_path, tiny_runs, capsys):
    """Before: ``configs: mydata`` was replaced by the run table's configs without a word (exit 0)."""
    r = _jsons(tiny_runs[0], tmp_path / "r")
    mine = "---\nconfigs: mydata  # points at my own data\n---\n\nMine.\n"
    (r / "README.md").write_text(mine)
    assert cli_main(["leaderboard", "--results", str(r)]) == 2
    err = capsys.readouterr().err
    assert f"{r / 'README.md'}: its front matter declares its own configs" in err and "--out DIR" in err
    assert (r / "README.md").read_text() == mine
    assert not (r / "LEADERBOARD.md").exists()  # refused before anything was written


def test_run_refuses_a_markdown_rule_readme_before_training(tmp_path, cemnist_cache, capsys):
    """Before: the run trained, then crashed with a raw ``yaml.scanner.ScannerError`` traceback (no path)."""
    r = tmp_path / "r"
    r.mkdir()
    (r / "README.md").write_text("---\n\nNotes: a: b\n\n---\n\nMy results.\n")
    assert cli_main(["run", "--method", "naive", *Q, "--out", str(r)]) == 2
    err = capsys.readouterr().err
    assert f"{r / 'README.md'}: the '---' block at its top is not valid YAML" in err
    assert "start the README with a title instead of a '---' rule" in err
    assert sorted(p.name for p in r.iterdir()) == ["README.md"]  # nothing trained, nothing written


# --- 3. one writer per (method, setting, mode, seed) and folder ------------------------------------------

_HOLDER = textwrap.dedent("""
    import fcntl, os, socket, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, f"{os.getpid()} on {socket.gethostname()}\\n".encode())
    print("locked", flush=True)
    time.sleep(120)
""")


def test_a_second_run_of_one_stem_is_refused_with_the_holders_pid(tmp_path, cemnist_cache, capsys):
    """Before: a second run of naive seed 0 into a folder another run was writing trained and "succeeded"
    (exit 0), mixing its step checkpoints with the first run's. The holder here is a process that holds the
    run's lock as a live run does (``{stem}.lock``, flock, its PID)."""
    from cemnist_baselines.runlock import RunLockedError, run_lock

    r = tmp_path / "r"
    r.mkdir()
    lock = r / "naive-2-2-overlap-seed0.lock"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert cli_main(["run", "--method", "naive", *Q, "--epochs", "2", "--out", str(r)]) == 2
        err = capsys.readouterr().err
        assert f"{lock}: run naive-2-2-overlap-seed0 is being written into {r} by another process (PID " \
               f"{holder.pid} on " in err
        assert "use another --out folder" in err
        assert not (r / "checkpoints" / "naive-2-2-overlap-seed0").exists()
        assert not (r / "naive-2-2-overlap-seed0.json").exists()
        with pytest.raises(RunLockedError, match=f"PID {holder.pid}"):
            with run_lock(r, "naive-2-2-overlap-seed0"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(r, "naive-2-2-overlap-seed0") as p:  # a dead holder's lock is free (the kernel drops it)
        assert p.read_text().startswith(f"{os.getpid()} on ")
    assert not lock.exists()


# --- 4. every reader goes through the one validating loader; NaN is never "no difference" --------------

def test_targets_refuse_a_result_that_validate_refuses(tmp_path, capsys):
    """Before: with ``task0_miou_bg`` edited to 0.99 in the three naive runs, ``targets`` printed
    ``PASS naive.future_bg.task0_miou_bg = 0.9900``."""
    r = _jsons(V1, tmp_path / "r", "*-overlap-seed*.json")
    for s in (0, 1, 2):
        _edit(r / f"naive-2-2-overlap-seed{s}.json", lambda d: d["final"]["future_bg"].update(task0_miou_bg=0.99))
    assert cli_main(["targets", "--results", str(r)]) == 2
    out, err = capsys.readouterr()
    assert "PASS naive.future_bg.task0_miou_bg" not in out
    assert f"{r / 'naive-2-2-overlap-seed0.json'}: does not validate (metrics: final.future_bg.task0_miou_bg = 0.99" in err
    assert "only results that pass `cemnist-baselines validate` are read" in err


def test_compare_never_takes_nan_for_no_difference(tmp_path, capsys):
    """Before: a re-run whose mib finals were NaN gave ``0 difference(s)`` and exit 0 (``abs(nan - x) > tol``
    is False), both through the CLI and in ``compare_boards``."""
    from cemnist_baselines.targets import compare_boards

    r = _jsons(V1, tmp_path / "r", "*-overlap-seed*.json")
    for s in (0, 1, 2):
        _edit(r / f"mib-2-2-overlap-seed{s}.json",
              lambda d: d["final"]["future_bg"].update(miou_bg=math.nan, first=math.nan))
    assert cli_main(["compare", "--reference", str(V1), "--results", str(r)]) == 2
    err = capsys.readouterr().err
    assert f"{r / 'mib-2-2-overlap-seed0.json'}: result holds non-finite numbers (final.future_bg.first = nan; " \
           f"final.future_bg.miou_bg = nan)" in err
    ref = {"mib": {"future_bg.miou_bg": 0.7, "future_bg.miou_bg_std": 0.01}}
    for other, std in ((math.nan, 0.01), (0.7, math.nan)):
        ref["mib"]["future_bg.miou_bg_std"] = std
        diffs = compare_boards(ref, {"mib": {"future_bg.miou_bg": other}}, metrics=("future_bg.miou_bg",))
        assert diffs and "not a finite number" in diffs[0], (other, std)


def test_progress_and_report_refuse_what_validate_refuses(tmp_path, tiny_runs, capsys):
    """Before: with kd's ``task0_miou_bg`` edited, ``progress`` called the run "finished" and ``report``
    drew it (exit 0)."""
    r = tmp_path / "r"
    shutil.copytree(tiny_runs[0], r)
    _edit(r / "kd-2-2-overlap-seed0.json", lambda d: d["final"]["future_bg"].update(task0_miou_bg=0.99))
    states = {e["stem"]: e["finished"] for e in run_progress(r)}
    assert states["naive-2-2-overlap-seed0"] is True
    assert states["kd-2-2-overlap-seed0"].startswith(
        f"result JSON unusable: {r / 'kd-2-2-overlap-seed0.json'}: does not validate (metrics: final.future_bg")
    assert cli_main(["report", str(r), "--out", str(tmp_path / "rep")]) == 2
    assert f"{r / 'kd-2-2-overlap-seed0.json'}: does not validate (metrics:" in capsys.readouterr().err
    assert not (tmp_path / "rep").exists()


def test_the_board_run_writes_leaves_out_refused_results(tmp_path, tiny_runs, capsys):
    """Before: ``run`` built its board with the unvalidated loader, so a kd result edited to 0.99 beside the
    new naive run became a kd row of ``LEADERBOARD.md`` (exit 0). Also checks that a finished run leaves no
    lock file (row 3)."""
    r = _jsons(tiny_runs[0], tmp_path / "r", "kd-*.json")
    _edit(r / "kd-2-2-overlap-seed0.json", lambda d: d["final"]["future_bg"].update(miou_bg=0.99))
    assert cli_main(["run", "--method", "naive", *Q, "--out", str(r)]) == 1
    err = capsys.readouterr().err
    assert f"refused {r / 'kd-2-2-overlap-seed0.json'}: metrics: final.future_bg.miou_bg = 0.99" in err
    board = (r / "LEADERBOARD.md").read_text()
    assert "| naive |" in board and "| kd |" not in board
    assert not list(r.glob("*.lock"))


# --- 8. what a row is keyed by is validated; non-finite numbers are refused when written and when read ----

def test_an_edited_device_type_is_refused(tmp_path, tiny_runs):
    """Before: ``env.device`` edited cpu -> cuda passed ``validate`` (the run moved to a cuda row), for a
    current record and for one of results/v1's older records alike."""
    r = _jsons(tiny_runs[0], tmp_path / "r", "naive-*.json")
    shutil.copy(V1 / "naive-2-2-overlap-seed1.json", r / "old.json")  # an older record: no cpu_model
    for name in ("naive-2-2-overlap-seed0.json", "old.json"):
        assert validate_file(r / name).ok, name
        _edit(r / name, lambda d: d["env"].update(device="cuda"))
        v = validate_file(r / name)
        assert [f for f in v.failures if f.startswith("env: device 'cuda' but ")], v.failures  # no GPU recorded
    _edit(r / "naive-2-2-overlap-seed0.json",
          lambda d: d["env"].update(device="cpu", gpu_capability="9.0", cudnn=91002))
    assert "env: device 'cpu' but the env records a GPU (gpu_capability, cudnn)" in validate_file(
        r / "naive-2-2-overlap-seed0.json").failures


@dataclass(frozen=True)
class NanWeight(Method):
    """A plug-in whose protocol value is NaN (fine-tuning otherwise)."""

    name: str = "nanweight"

    def protocol_values(self) -> dict[str, object]:
        return {"weight": float("nan")}


def test_nan_protocol_values_are_refused_when_written_and_when_read(tmp_path, tiny_runs, tiny_cfg):
    """Before: the run wrote ``"weight": NaN`` (not JSON) into its result and ``validate`` accepted it.
    Now the plug-in's dry call refuses it before training, the writer refuses any non-finite number (for a
    record that got past the dry call) and the reader refuses it, each naming the field."""
    from cemnist_baselines.results import result_json_text, run_id
    from cemnist_baselines.trainer import run_one

    out = tmp_path / "r"
    with pytest.raises(ValueError, match=r"method 'nanweight'.*protocol_values\(\) must hold JSON values.*"
                                         r"\{'weight': nan\}; fix the plug-in"):
        run_one(method=NanWeight(), seed=0, cfg=tiny_cfg.replace(max_train=16, max_test=8), out_dir=out,
                progress=False, device="cpu")
    assert not list(out.glob("*.json")) and not list(out.glob("*.lock"))
    with pytest.raises(ValueError, match=r"nanweight-2-2-overlap-seed0.json: not written: the result holds "
                                         r"non-finite numbers \(method_protocol.weight = nan\)"):
        result_json_text({"method_protocol": {"weight": math.nan}}, name="nanweight-2-2-overlap-seed0.json")
    out.mkdir(exist_ok=True)
    # the same result written by another tool: refused when read, naming the field
    d = json.loads((tiny_runs[0] / "naive-2-2-overlap-seed0.json").read_text())
    d.update(method="nanweight", method_protocol={"weight": math.nan})
    d["run_id"] = run_id(d)
    (out / "nanweight.json").write_text(json.dumps(d))
    v = validate_file(out / "nanweight.json")
    assert v.failures == ["schema: result holds non-finite numbers (method_protocol.weight = nan); a result has "
                          "finite numbers only: delete it and rerun the run"]


def test_negative_or_nan_wall_times_are_refused(tmp_path, tiny_runs, capsys):
    """Before: a wall time of -3 s (or NaN) passed ``validate`` and the board printed it."""
    r = _jsons(tiny_runs[0], tmp_path / "r", "naive-*.json")
    p = r / "naive-2-2-overlap-seed0.json"
    _edit(p, lambda d: d["wall_time_per_task_s"].__setitem__(1, -3.0))
    assert "schema: wall_time_per_task_s must be a list of seconds >= 0" in validate_file(p).failures[0]
    _edit(p, lambda d: d["wall_time_per_task_s"].__setitem__(1, math.nan))
    assert "wall_time_per_task_s[1] = nan" in validate_file(p).failures[0]
    assert cli_main(["leaderboard", "--results", str(r)]) == 2  # nothing valid left: no board
    assert "no valid result JSON" in capsys.readouterr().err and not (r / "LEADERBOARD.md").exists()


# --- 9. FIFOs, devices and huge files: readers open regular files of bounded size only ------------------

_READERS = textwrap.dedent("""
    import io, resource, sys, contextlib
    from pathlib import Path
    from cemnist_baselines.cli import main
    from cemnist_baselines.run_progress import run_progress
    import cemnist_baselines.validate, cemnist_baselines.leaderboard, cemnist_baselines.report  # noqa: F401
    import matplotlib.pyplot  # noqa: F401  (imported before the memory cap)
    r = Path(sys.argv[1])
    vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), resource.RLIM_INFINITY))  # /dev/zero may not grow
    for argv in (["validate", str(r)], ["leaderboard", "--results", str(r)], ["targets", "--results", str(r)],
                 ["report", str(r), "--out", str(r / "rep")]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
            rc = main(argv)
        print(argv[0], rc, err.getvalue().replace("\\n", " | "), flush=True)
    print("progress", {e["stem"]: e["finished"] for e in run_progress(r)}, flush=True)
""")


def test_fifo_dev_zero_and_huge_json_never_block_or_grow(tmp_path, tiny_runs):
    """Before: ``validate`` (the first reader tried) read the ``*.json`` symlinked to /dev/zero until memory ran
    out (``MemoryError`` under this test's 1 GiB cap; uncapped it grows without bound), and a FIFO named
    ``*.json`` blocked it for ever (checked without the link: killed at this test's 120 s timeout)."""
    r = tmp_path / "r"
    shutil.copytree(tiny_runs[0], r, ignore=shutil.ignore_patterns("*.safetensors", "*.md", "*.csv", "*.parquet"))
    shutil.copytree(tiny_runs[0] / "checkpoints", r / "checkpoints", dirs_exist_ok=True)
    (r / "naive-2-2-overlap-seed0.json").unlink()
    os.mkfifo(r / "naive-2-2-overlap-seed0.json")
    (r / "kd-2-2-overlap-seed0.json").unlink()
    (r / "kd-2-2-overlap-seed0.json").symlink_to("/dev/zero")
    with open(r / "huge.json", "wb") as f:
        f.truncate(17 * 1024 * 1024)
    res = subprocess.run([sys.executable, "-c", _READERS, str(r)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = {ln.split(" ", 1)[0]: ln for ln in res.stdout.splitlines()}
    fifo = f"{r / 'naive-2-2-overlap-seed0.json'} is a FIFO (named pipe), not a regular file"
    zero = f"{r / 'kd-2-2-overlap-seed0.json'} is a character device, not a regular file"
    huge = f"{r / 'huge.json'} is 17,825,792 bytes, more than the 16,777,216 bytes"
    assert lines["validate"].startswith("validate 1 ") and all(
        s.split(" is ", 1)[1] in lines["validate"] for s in (fifo, zero, huge)), lines["validate"]
    assert lines["leaderboard"].startswith("leaderboard 1 ") and "refused" in lines["leaderboard"]
    for cmd in ("targets", "report"):
        assert lines[cmd].startswith(f"{cmd} 2 ") and fifo in lines[cmd] and zero in lines[cmd], lines[cmd]
    assert "'naive-2-2-overlap-seed0': 'result JSON unusable: " + fifo in lines["progress"], lines["progress"]


# --- 15. absurdly nested JSON: every reader names the file ---------------------------------------------

def test_a_deeply_nested_json_is_named_by_every_reader(tmp_path, tiny_runs, capsys):
    """Before: every reader failed with a bare ``RecursionError: maximum recursion depth exceeded`` (no file
    name): ``is_result_file`` let it through."""
    r = _jsons(tiny_runs[0], tmp_path / "r")
    (r / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (r / "deep100.json").write_text('{"schema": "cemnist-baselines-result/2", "x": ' + "[" * 100 + "]" * 100 + "}")
    deep = f"{r / 'deep.json'}: damaged result JSON (nested too deeply to read"
    deep100 = f"{r / 'deep100.json'}: result nests deeper than 32 levels"
    assert cli_main(["validate", str(r)]) == 1
    out = capsys.readouterr().out
    assert deep.split(": ", 1)[1] in out and deep100.split(": ", 1)[1] in out and str(r / "deep.json") in out
    assert cli_main(["leaderboard", "--results", str(r)]) == 1
    assert str(r / "deep.json") in capsys.readouterr().err
    for argv in (["targets", "--results", str(r)], ["report", str(r), "--out", str(tmp_path / "rep")]):
        assert cli_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert deep in err and deep100 in err, err
    shutil.copy(r / "deep.json", r / "naive-2-2-overlap-seed0.json")
    shutil.copytree(tiny_runs[0] / "checkpoints" / "naive-2-2-overlap-seed0",
                    r / "checkpoints" / "naive-2-2-overlap-seed0")
    states = {e["stem"]: e["finished"] for e in run_progress(r)}
    assert states["naive-2-2-overlap-seed0"].startswith(f"result JSON unusable: {r / 'naive-2-2-overlap-seed0.json'}: "
                                                        f"damaged result JSON (nested too deeply")

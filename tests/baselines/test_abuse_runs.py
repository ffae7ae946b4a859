"""Misuse cases of the first round on the baselines side (docs/RELIABILITY.md, "Misuse cases, first round"):
traces bound to their JSON, damaged files named in every reader, and --jobs workers that die with their
parent (each a reproduction that failed before the fix)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cemnist_baselines.report.animations import load_trace
from cemnist_baselines.cli import main as cli_main
from cemnist_baselines.run_progress import run_progress
from cemnist_baselines.results import ResultError


def test_a_trace_of_another_run_is_refused(tmp_path, tiny_runs, tiny_cfg):
    from cemnist_baselines.trainer import run_one

    src, _ = tiny_runs
    out = tmp_path / "r"
    run_one(method="kd", seed=0, cfg=tiny_cfg.replace(max_train=8), out_dir=out, progress=False, device="cpu")
    # a stale trace of an earlier kd run (another config) beside the new JSON: same file name, other run
    shutil.copy(src / "kd-2-2-overlap-seed0.trace.safetensors", out / "kd-2-2-overlap-seed0.trace.safetensors")
    load_trace(src / "kd-2-2-overlap-seed0.trace.safetensors")  # beside its own JSON it loads
    with pytest.raises(ValueError, match=r"kd-2-2-overlap-seed0.trace.safetensors: .*leftover from another run"):
        load_trace(out / "kd-2-2-overlap-seed0.trace.safetensors")


def test_damaged_files_are_named_by_every_reader(tmp_path, tiny_runs, capsys):
    src, _ = tiny_runs
    out = tmp_path / "r"
    shutil.copytree(src, out)
    (out / "kd-2-2-overlap-seed0.json").write_text('{"schema": "cemnist-baselines-result/2", "method": "kd", ')
    assert cli_main(["leaderboard", "--results", str(out)]) == 1      # the board is written without it
    err = capsys.readouterr().err
    assert "refused" in err and "kd-2-2-overlap-seed0.json" in err and "not a readable JSON result" in err
    for argv in (["targets", "--results", str(out)], ["report", str(out), "--out", str(tmp_path / "rep")]):
        assert cli_main(argv) == 2, argv
        assert "kd-2-2-overlap-seed0.json: damaged result JSON" in capsys.readouterr().err
    states = {e["stem"]: e["finished"] for e in run_progress(out)}
    assert states["kd-2-2-overlap-seed0"].startswith("result JSON unusable")   # not "finished"
    missing = json.loads((out / "mib-2-2-overlap-seed0.json").read_text())
    del missing["method"]
    (out / "kd-2-2-overlap-seed0.json").write_text(json.dumps(missing))
    assert cli_main(["targets", "--results", str(out)]) == 2
    assert "kd-2-2-overlap-seed0.json: result is missing the keys ['method']" in capsys.readouterr().err
    ck = out / "checkpoints" / "naive-2-2-overlap-seed0" / "task4.safetensors"
    ck.write_bytes(b"")
    with pytest.raises(ValueError, match=r"task4.safetensors: damaged or truncated checkpoint"):
        run_progress(out)
    trace = out / "naive-2-2-overlap-seed0.trace.safetensors"
    trace.write_bytes(trace.read_bytes()[:50])
    with pytest.raises(ValueError, match=r"naive-2-2-overlap-seed0.trace.safetensors: damaged or truncated trace"):
        load_trace(trace)
    assert isinstance(ResultError("x"), ValueError)


_DRIVER = """
import sys
from cemnist_baselines.config import get_config
from cemnist_baselines.runner import run_many
cfg = get_config("tiny", epochs=400, max_train=16, max_test=4, batch_size=16)
run_many(methods=["naive", "joint"], seeds=[0], cfg=cfg, out_dir=sys.argv[1], preset="x", device="cpu",
         jobs=2, progress=False)
"""


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        txt = (task / "children").read_text().split()
        out |= {int(x) for x in txt}
    return out


def _alive(pid: int) -> bool:
    try:
        state = [ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("State:")][0]
    except (FileNotFoundError, IndexError):
        return False
    return "Z" not in state.split()[1]


def _start(tmp_path: Path) -> tuple[subprocess.Popen, set[int]]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, str(tmp_path / "out")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:   # wait until both workers run (then give them time to start training)
        kids = set()
        if _alive(proc.pid):
            for k in _children(proc.pid):
                try:
                    cmd = Path(f"/proc/{k}/cmdline").read_bytes()
                except FileNotFoundError:
                    continue
                if b"spawn_main" in cmd and b"resource_tracker" not in cmd:
                    kids.add(k)
        if len(kids) >= 2:
            time.sleep(5)
            return proc, kids
        time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"workers did not start: {proc.stderr.read().decode()[-2000:]}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and PR_SET_PDEATHSIG are Linux")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_jobs_workers_die_with_their_parent(tmp_path, cemnist_cache, sig):
    proc, kids = _start(tmp_path)
    os.kill(proc.pid, sig)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.2)
    assert not any(_alive(k) for k in kids), f"workers {kids} outlived their parent ({sig.name})"
    assert not list((tmp_path / "out").glob("*.json"))  # nothing written after the parent died

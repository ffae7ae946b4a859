"""Misuse cases of the second round on the training side: rows 5, 10, 11, 13 and 14 of docs/RELIABILITY.md
("Misuse cases, second round: training runs"). Each test failed
before its fix (the docstring says how); the few runs use the tiny preset shrunk further (``Q``)."""
from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import struct
import textwrap
from pathlib import Path

import pytest
import torch

from cemnist_baselines.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
Q = ["--preset", "tiny", "--epochs", "1", "--max-train", "16", "--max-test", "8", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def q_run(tmp_path_factory, cemnist_cache):
    """One naive run with ``Q`` (checkpoints, shared task 0, result JSON); tests copy the folder."""
    from cemnist_baselines.config import get_config
    from cemnist_baselines.trainer import run_one

    out = tmp_path_factory.mktemp("q_run")
    cfg = get_config("tiny", epochs=1, max_train=16, max_test=8)
    res = run_one(method="naive", seed=0, cfg=cfg, out_dir=out, preset="tiny", device="cpu", progress=False)
    return out, cfg, res


@pytest.fixture
def no_training(monkeypatch):
    """``run_one`` replaced by a stub that fails the test if a run starts (checks must come first)."""
    import cemnist_baselines.runner as runner

    def trained(**kw):
        raise AssertionError(f"training started for {kw.get('method')!r}: the error came too late")

    monkeypatch.setattr(runner, "run_one", trained)


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("cemnist-baselines: error: "), err
    return lines[0]


def _edit_header(path: Path, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` (same length) once in a safetensors file's JSON header."""
    data = bytearray(path.read_bytes())
    n = struct.unpack("<Q", data[:8])[0]
    head = bytes(data[8:8 + n])
    assert len(old) == len(new) and head.count(old) >= 1, (old, head[:400])
    data[8:8 + n] = head.replace(old, new, 1)
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------------------ row 5
def test_a_checkpoint_with_edited_progress_is_not_resumed(tmp_path, q_run):
    """Before: the checksum covered the tensors only; one edited byte in the ``progress`` metadata of step4 was
    resumed and the result JSON carried the edited wall time. Now the hash covers tensors and metadata."""
    from cemnist_baselines.report.animations import load_trace
    from cemnist_baselines.checkpoints import load_checkpoint
    from cemnist_baselines.trainer import run_one

    src, cfg, res = q_run
    out = tmp_path / "r"
    shutil.copytree(src, out)
    (out / "naive-2-2-overlap-seed0.json").unlink()
    ck = out / "checkpoints" / "naive-2-2-overlap-seed0" / "task4.safetensors"
    wall = res["wall_time_per_task_s"][0]
    first = repr(wall)[0]
    edited = "9" if first != "9" else "8"
    _edit_header(ck, f'wall_time_per_task_s\\": [{first}'.encode(), f'wall_time_per_task_s\\": [{edited}'.encode())
    with pytest.raises(ValueError, match=r"task4.safetensors: checkpoint content does not match its recorded SHA-256"):
        run_one(method="naive", seed=0, cfg=cfg, out_dir=out, preset="tiny", device="cpu", progress=False,
                resume=True)
    assert not (out / "naive-2-2-overlap-seed0.json").exists()
    # a checkpoint without the new hash (written before it existed) is refused with the fix
    from safetensors.torch import save_file
    old = out / "old.safetensors"
    save_file({"model.w": torch.zeros(2)}, str(old), metadata={"format": "cemnist-baselines-ckpt/2",
                                                                "config": "{}", "progress": "{}"})
    with pytest.raises(ValueError, match=r"old.safetensors: checkpoint has no 'sha256' .*rerun without --resume"):
        load_checkpoint(old)
    # the committed traces (tensor hash only) still load, beside their JSON
    for trace in sorted((ROOT / "results" / "v1").glob("*.trace.safetensors"))[:2]:
        assert load_trace(trace).epoch_confusion.shape[1:] == (11, 11)


# ----------------------------------------------------------------------------- row 10
def test_full_disk_during_a_checkpoint_write_names_the_path(tmp_path, q_run, capsys):
    """Before: with ``ulimit -f`` below a checkpoint's size the run died with a raw ``SafetensorError: Error
    while serializing: I/O error: File too large (os error 27)`` traceback, no path. Now: one line naming the
    file and the fix, exit 1."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    out = tmp_path / "full"
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))  # a checkpoint is ~340 kB
    try:
        rc = cli_main(["run", "--method", "naive", *Q, "--out", str(out)])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    line = _one_line_error(capsys.readouterr().err)
    assert rc == 1
    assert f"cannot write {out / 'checkpoints'}" in line and ".safetensors" in line
    assert "file-size limit" in line and "free space" in line and "--resume" in line


def test_no_space_for_the_result_json_names_the_path(tmp_path, q_run, capsys, monkeypatch):
    """Before: ``OSError: [Errno 28] No space left on device`` escaped the CLI as a traceback. Now: one line
    naming the result JSON and the fix, exit 1 (the run resumes from its checkpoints: no training here)."""
    import cemnist_data.fileio as fileio

    src, _, _ = q_run
    out = tmp_path / "r"
    shutil.copytree(src, out)
    (out / "naive-2-2-overlap-seed0.json").unlink()
    real = fileio.atomic_write_bytes

    def full(path, data):
        if str(path).endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(fileio, "atomic_write_bytes", full)
    rc = cli_main(["run", "--method", "naive", *Q, "--out", str(out), "--resume"])
    line = _one_line_error(capsys.readouterr().err)
    assert rc == 1
    assert f"cannot write {out / 'naive-2-2-overlap-seed0.json'}: the disk is full" in line and "--resume" in line


# ----------------------------------------------------------------------------- row 11
def _out_case(tmp_path: Path, case: str, monkeypatch) -> tuple[str, str]:
    """(--out, what the error must say) for each unusable output folder."""
    if case == "file child":
        (tmp_path / "afile").write_text("x")
        return str(tmp_path / "afile" / "sub"), "afile is a file, not a folder"
    if case == "symlink loop":
        os.symlink(tmp_path / "l2", tmp_path / "l1")
        os.symlink(tmp_path / "l1", tmp_path / "l2")
        return str(tmp_path / "l1" / "sub"), "symbolic-link loop"
    if case == "non-UTF-8":
        return os.fsdecode(os.fsencode(str(tmp_path)) + b"/bad\xff"), "not valid UTF-8"
    if case == "256-char name":
        return str(tmp_path / ("n" * 256)), "256 bytes, longer than a file name may be (255)"
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
    else:  # root writes anywhere: simulate the refusal of a read-only folder
        import tempfile
        real = tempfile.mkstemp

        def mkstemp(*a, **kw):
            if Path(kw.get("dir", "")) == ro:
                raise PermissionError(errno.EACCES, "Permission denied", str(ro))
            return real(*a, **kw)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return str(ro), "read-only (permission denied); make it writable"


@pytest.mark.parametrize("case", ["file child", "symlink loop", "non-UTF-8", "256-char name", "read-only"])
def test_unusable_out_is_refused_before_training(tmp_path, case, cemnist_cache, no_training, capsys,
                                                           monkeypatch):
    """Before: training started for every case (the non-UTF-8 name failed after it, a symlink loop with an
    ``OSError`` traceback, a read-only folder with a bare ``[Errno 13]``). Now: one line naming --out and the
    fix, exit 2, before training."""
    out, says = _out_case(tmp_path, case, monkeypatch)
    try:
        rc = cli_main(["run", "--method", "naive", *Q, "--out", out])
        line = _one_line_error(capsys.readouterr().err)
    finally:
        if case == "read-only":
            (tmp_path / "ro").chmod(0o755)
    assert rc == 2
    assert says in line and "choose another --out" in line
    if case != "non-UTF-8":
        assert f"--out {out}" in line


# ----------------------------------------------------------------------------- row 13
def _plugin(tmp_path: Path, monkeypatch, module: str, body: str) -> str:
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    return module


def test_subclassing_a_builtin_keeps_its_flags(tmp_path, monkeypatch):
    """Before: ``@dataclass(frozen=True) class HalfKD(KD): name = "halfkd"`` had ``uses_old_model=False`` (the
    flags were set on the METHODS instances only) and crashed at task 1 with ``AttributeError: 'NoneType'
    object has no attribute 'shape'``. Now every built-in class carries its flags as class defaults, equal to
    its registered instance's."""
    from cemnist_baselines.methods import Method
    from cemnist_baselines.registry import METHODS
    from cemnist_baselines.registry import resolve_method

    mod = _plugin(tmp_path, monkeypatch, "r2_halfkd", """
        from dataclasses import dataclass
        from cemnist_baselines.methods import KD

        @dataclass(frozen=True)
        class HalfKD(KD):
            name = "halfkd"
    """)
    m = resolve_method(f"{mod}:HalfKD")
    assert m.name == "halfkd" and m.uses_old_model
    flags = ("uses_old_model", "balanced_init", "joint", "old_model_per_batch", "features", "cached_features")
    for name, inst in METHODS.items():
        if type(inst) is not Method:  # the class defaults are the registered instance's flags
            assert {f: getattr(type(inst)(name=name), f) for f in flags} == {f: getattr(inst, f) for f in flags}, name


def test_the_half_kd_example_runs(tmp_path, q_run, monkeypatch, capsys):
    """Before: examples/half_kd_plugin.py (a KD subclass naming only what differs) crashed at task 1 with
    ``AttributeError: 'NoneType' object has no attribute 'shape'``. Now it runs (task 0 shared with naive)."""
    src, _, _ = q_run
    out = tmp_path / "r"
    shutil.copytree(src, out)
    monkeypatch.chdir(ROOT)
    rc = cli_main(["run", "--method", "examples.half_kd_plugin:HalfKD", *Q, "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    r = json.loads((out / "halfkd-2-2-overlap-seed0.json").read_text())
    assert r["shared_task0"] and r["method_protocol"] == {"kd_formula": "tutorial", "kd_scale": 0.5}
    assert r["method_source"] == "examples.half_kd_plugin:HalfKD"


_BAD = {
    "raises": ("""
        @dataclass(frozen=True)
        class Bad(Method):
            name: str = "r2raises"
            uses_old_model: bool = True
            def loss(self, z, y, t, *, c_old, kd_lambda):
                raise RuntimeError("boom")
    """, "method 'r2raises' (r2_raises:Bad), task 1: loss() raised RuntimeError: boom"),
    "non-scalar": ("""
        @dataclass(frozen=True)
        class Bad(Method):
            name: str = "r2nonscalar"
            def loss(self, z, y, t, *, c_old, kd_lambda):
                return torch.nn.functional.cross_entropy(z, y, ignore_index=255, reduction="none")
    """, "method 'r2nonscalar' (r2_non_scalar:Bad), task 1: loss() must return one floating-point number"),
    "targets without uses_old_model": ("""
        @dataclass(frozen=True)
        class Bad(Method):
            name: str = "r2targets"
            def targets(self, y, t, *, c_old):
                return torch.where(y < c_old, t.argmax(1), y)
    """, "method 'r2targets' (r2_targets_without_uses_old_model:Bad): it overrides targets(), which gets the old "
         "model's logits, but uses_old_model is False"),
    "NoneType logits": ("""
        @dataclass(frozen=True)
        class Bad(KD):
            name: str = "r2nologits"
            uses_old_model: bool = False
    """, "method 'r2nologits' (r2_nonetype_logits:Bad), task 1: loss() raised AttributeError: 'NoneType' object "
         "has no attribute 'shape' (the old model's logits t are None: uses_old_model is False"),
    "set protocol value": ("""
        @dataclass(frozen=True)
        class Bad(Method):
            name: str = "r2set"
            def protocol_values(self):
                return {"maps": {"enc1", "enc2"}}
    """, "method 'r2set' (r2_set_protocol_value:Bad): protocol_values() must hold JSON values"),
    "NaN protocol value": ("""
        @dataclass(frozen=True)
        class Bad(Method):
            name: str = "r2nan"
            def protocol_values(self):
                return {"weight": float("nan")}
    """, "method 'r2nan' (r2_nan_protocol_value:Bad): protocol_values() must hold JSON values"),
}


@pytest.mark.parametrize("case", list(_BAD))
def test_a_broken_plugin_is_named_before_training(tmp_path, case, cemnist_cache, monkeypatch,
                                                            no_training, capsys):
    """Before: each of these started training (a raising or non-scalar loss failed inside it with a raw
    traceback; targets without the old model crashed at task 1; a set in protocol_values() failed when the
    result was written, NaN was written as bare ``NaN``). Now: one line naming the method and the task (or
    protocol_values), exit 2, from a dry call on a tiny batch before any training."""
    body, says = _BAD[case]
    mod = "r2_" + case.replace(" ", "_").replace("-", "_").lower()
    _plugin(tmp_path, monkeypatch, mod, "from dataclasses import dataclass\nimport torch\n"
            "from cemnist_baselines.methods import KD, Method\n" + textwrap.dedent(body))
    rc = cli_main(["run", "--method", f"{mod}:Bad", *Q, "--out", str(tmp_path / "o")])
    line = _one_line_error(capsys.readouterr().err)
    assert rc == 2 and says in line, line
    assert "fix the plug-in" in line or "declare `uses_old_model: bool = True`" in line, line


# ----------------------------------------------------------------------------- row 14
@pytest.mark.parametrize("flag, value, says", [
    ("--lr", "inf", "lr must be > 0 and <= 1: a finite peak learning rate in (0, 1]"),
    ("--lr", "1e300", "lr must be > 0 and <= 1"),
    ("--lr-next", "1e300", "lr_next must be > 0 and <= 1"),
    ("--kd-lambda", "inf", "kd_lambda must be >= 0 and <= 10000: a finite weight in [0, 10000]"),
])
def test_non_finite_and_absurd_numbers_are_refused(tmp_path, flag, value, says, cemnist_cache,
                                                            no_training, capsys):
    """Before: ``--lr inf`` / ``1e300`` and ``--kd-lambda inf`` were accepted (``--lr inf`` saved a NaN task-0
    checkpoint). Now: a ValueError naming the field, the valid range and the value, exit 2."""
    rc = cli_main(["run", "--method", "naive", *Q, flag, value, "--out", str(tmp_path / "o")])
    line = _one_line_error(capsys.readouterr().err)
    assert rc == 2 and says in line and line.endswith(f"got {float(value)!r}")


def test_a_huge_run_prints_its_image_steps_and_an_estimate(tmp_path, cemnist_cache, no_training,
                                                                    capsys):
    """Before: ``--epochs 1000000000`` started training with no word. Now the planned image-steps, the ratio
    to the ``long`` preset and a time estimate are printed before training."""
    with pytest.raises(AssertionError, match="training started"):
        cli_main(["run", "--method", "naive", *Q, "--epochs", "1000000000", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert ("note: planned: 80,000,000,000 image-steps per run x 1 run(s), 64,000.0 times the `long` preset's "
            "1,250,000 per run") in err and "about 16.9 years" in err
    with pytest.raises(AssertionError, match="training started"):  # the long preset's budget: no note
        cli_main(["run", "--method", "naive", "--preset", "long", "--seeds", "0", "--no-progress", "--device", "cpu",
                  "--out", str(tmp_path / "o")])
    assert "planned" not in capsys.readouterr().err

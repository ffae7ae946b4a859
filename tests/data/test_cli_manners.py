"""Command-line manners (--version, exit codes, pipes, help, python -m, progress bars): README, "The `cemnist`
command"."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cemnist_data
from cemnist_data.cli import EXIT_INTEGRITY, EXIT_RUNTIME, EXIT_USAGE, build_parser, main as cli_main
from cemnist_data.progress import progress_enabled

EXE = Path(sys.executable).with_name("cemnist")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_version_on_the_command_and_python_dash_m() -> None:
    res = _run(str(EXE), "--version")
    assert res.returncode == 0 and res.stdout.strip() == f"cemnist {cemnist_data.__version__}"
    res = _run(sys.executable, "-m", "cemnist_data", "--version")
    assert res.returncode == 0 and res.stdout.strip() == f"cemnist {cemnist_data.__version__}"


def test_distinct_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (EXIT_RUNTIME, EXIT_USAGE, EXIT_INTEGRITY) == (1, 2, 3)
    with pytest.raises(SystemExit) as exc:  # argparse: usage error
        cli_main(["build"])
    assert exc.value.code == EXIT_USAGE
    assert cli_main(["build", "--out", str(tmp_path / "x"), "--setting", "3-2", "--quiet"]) == EXIT_USAGE
    assert cli_main(["verify", str(tmp_path / "nothing-here")]) == EXIT_USAGE  # a missing input folder
    assert "no release folder" in capsys.readouterr().err
    out = tmp_path / "r"
    assert cli_main(["build", "--out", str(out), "--train-per-task", "8", "--validation-per-task", "2",
                     "--test-pool", "10", "--quiet"]) == 0
    f = out / "data" / "overlap-task0" / "validation-00000-of-00001.parquet"
    f.write_bytes(f.read_bytes()[:-50])
    capsys.readouterr()
    assert cli_main(["verify", str(out), "--quiet"]) == EXIT_INTEGRITY
    assert "integrity error" in capsys.readouterr().err
    assert "3 integrity failure" in build_parser().format_help()


def test_no_broken_pipe_traceback_under_head() -> None:
    res = subprocess.run(f"'{EXE}' info --json | head -1", shell=True, capture_output=True, text=True)
    assert res.stdout.strip() == "{" and "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr


VIZ_COMMANDS: set[str] = set()  # the pictures commands are checked like every other


def test_every_option_has_help() -> None:
    missing = []

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:  # noqa: SLF001
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                for name, sub in action.choices.items():
                    if prefix == "cemnist" and name in VIZ_COMMANDS:
                        continue
                    walk(sub, f"{prefix} {name}")
            elif not action.help and action.dest != "help":
                missing.append(f"{prefix} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "cemnist")
    assert missing == []


@pytest.mark.parametrize(("env", "requested", "expected"), [
    ({}, True, True), ({}, False, False), ({"TQDM_DISABLE": "1"}, True, False),
    ({"HF_DATASETS_DISABLE_PROGRESS_BARS": "TRUE"}, True, False), ({"TQDM_DISABLE": "0"}, True, True),
])
def test_progress_bars_honour_quiet_and_the_conventions(monkeypatch: pytest.MonkeyPatch, env: dict, requested: bool,
                                                        expected: bool) -> None:
    for k in ("TQDM_DISABLE", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert progress_enabled(requested) is expected


def test_verify_shows_progress_and_quiet_silences_it(small_release: Path) -> None:
    env = {"TQDM_DISABLE": "", "HF_DATASETS_DISABLE_PROGRESS_BARS": ""}
    loud = _run(str(EXE), "verify", str(small_release), env=env)
    assert loud.returncode == 0 and "33/33" in loud.stderr and "OK:" in loud.stdout
    quiet = _run(str(EXE), "verify", str(small_release), "--quiet", env=env)
    assert quiet.returncode == 0 and quiet.stderr == ""
    hf = _run(str(EXE), "verify", str(small_release), env={**env, "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"})
    assert hf.returncode == 0 and hf.stderr == ""


def test_verify_writes_nothing_into_the_folder_it_verifies(release, tmp_path: Path) -> None:
    def tree(root: Path) -> dict[str, tuple[int, int]]:
        return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}

    before = tree(release.path)
    assert cli_main(["verify", str(release.path), "--quiet", "--cache-dir", str(tmp_path / "c")]) == 0
    cemnist_data.load_dataset(str(release.path), "joint", split="validation", cache_dir=tmp_path / "c2")
    assert tree(release.path) == before
    assert len(list((tmp_path / "c" / "verified").glob("*.json"))) == 1


# --- one quiet flag, one exit code for a missing folder, -v, the libraries' progress switches ---


def test_a_missing_input_folder_is_exit_2_in_both_commands(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """(``cemnist report`` runs ``cemnist-baselines report`` in a subprocess: capfd sees its stderr.)"""
    from cemnist_baselines.cli import main as baselines_main

    nope = str(tmp_path / "nope")
    for argv in (["verify", nope], ["info", nope], ["publish", nope, "--dry-run"], ["card", "--dir", nope],
                 ["report", nope]):
        assert cli_main(argv) == EXIT_USAGE, argv
        err = capfd.readouterr().err
        assert nope in err and "Traceback" not in err, argv
    for argv in (["leaderboard", "--results", nope], ["report", nope], ["targets", "--results", nope],
                 ["progress", "--results", nope]):
        assert baselines_main(argv) == EXIT_USAGE, argv
        assert nope in capfd.readouterr().err, argv


def test_quiet_is_the_flag_in_both_commands_with_no_progress_as_alias() -> None:
    from cemnist_baselines.cli import _parser as baselines_parser

    for flag in ("--quiet", "--no-progress"):
        assert build_parser().parse_args(["verify", "x", flag]).quiet is True
        assert build_parser().parse_args(["build", "--out", "x", flag]).quiet is True
        assert baselines_parser().parse_args(["run", flag]).quiet is True
    assert baselines_parser().parse_args(["run"]).quiet is False


def test_verbose_shows_the_cemnist_logger(small_release: Path) -> None:
    env = {"TQDM_DISABLE": "1"}
    loud = _run(str(EXE), "-v", "verify", str(small_release), "--quiet", env=env)
    assert loud.returncode == 0 and "INFO cemnist: CEMNIST: verifying" in loud.stderr
    after = _run(str(EXE), "verify", "-v", str(small_release), "--quiet", env=env)  # after the subcommand too
    assert "INFO cemnist: CEMNIST: verifying" in after.stderr
    assert _run(str(EXE), "verify", str(small_release), "--quiet", env=env).stderr == ""
    res = _run(str(Path(sys.executable).with_name("cemnist-baselines")), "-v", "progress", "--results", "/nonexistent-x")
    assert res.returncode == EXIT_USAGE and "Traceback" not in res.stderr


@pytest.mark.parametrize("library", ["datasets", "huggingface_hub"])
def test_progress_bars_honour_the_libraries_switches(monkeypatch: pytest.MonkeyPatch, library: str) -> None:
    import importlib

    for k in ("TQDM_DISABLE", "HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(k, raising=False)
    mod = importlib.import_module("datasets" if library == "datasets" else "huggingface_hub.utils")
    assert progress_enabled(True) is True
    mod.disable_progress_bars()
    try:
        assert progress_enabled(True) is False
    finally:
        mod.enable_progress_bars()
    assert progress_enabled(True) is True
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    assert progress_enabled(True) is False

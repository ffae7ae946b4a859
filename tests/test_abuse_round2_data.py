"""Misuse cases of the second round, data side: each misuse of the ``cemnist`` command as a test.

One test (or a few) per case; each row of docs/RELIABILITY.md ("Misuse cases, second round: data side")
names its tests (the row number is in the comment above them). Every test failed on
the code before its fix: its docstring says how. Releases are built from the tiny spec of
tests/test_abuse.py, so the whole file runs in about 11 s on 2 cores (35 s while two training runs share them).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cemnist_data import CemnistSpec, build_release, verify_release
from cemnist_data.cli import main as cemnist_main
from cemnist_data.release import split_path

TINY = CemnistSpec(train_per_task=24, validation_per_task=8, test_pool=40)
TINY_ARGS = ["--train-per-task", "24", "--validation-per-task", "8", "--test-pool", "40", "--quiet"]
BIG_ARGS = ["--train-per-task", "4000", "--validation-per-task", "500", "--quiet"]  # runs long enough to be stopped


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny custom build; tests copy it before they damage it."""
    out = tmp_path_factory.mktemp("r2") / "rel"
    build_release(out, spec=TINY, progress=False)
    return out


def spec_sha256(spec: dict) -> str:
    """What a manifest's ``spec_sha256`` is: SHA-256 of its spec as compact JSON with sorted keys."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rewrite_manifest(folder: Path, edit) -> None:  # noqa: ANN001 - a function of the manifest dict
    m = json.loads((folder / "manifest.json").read_text())
    edit(m)
    (folder / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")


def _child(code: str, *args: str, timeout: float = 90, limit_memory: bool = False,
           file_size: int | None = None) -> subprocess.CompletedProcess[str]:
    """Python ``code`` in a fresh process (a hang fails the test after ``timeout`` s instead of blocking pytest;
    ``limit_memory``: 4 GiB of address space, so an unbounded read fails fast instead of filling the machine;
    ``file_size``: the ``ulimit -f`` of the child, in bytes)."""

    def limits() -> None:
        if limit_memory:
            resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))
        if file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, HF_HUB_OFFLINE="1"), preexec_fn=limits)


def _one_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


# --- 1. `cemnist cache clean` removes only what earlier CEMNIST versions wrote under arrow/ ---------------


def _legacy_arrow_copy(arrow: Path, config: str = "default-bc5d77e1dbd610b1") -> Path:
    """What `datasets.load_dataset("parquet", cache_dir=CACHE/arrow)` of CEMNIST <= 0.x left (its real layout)."""
    h = "a859584b6747f312c02efa800dcc0a33038f602cb670b65dc6103d3f269c5565"
    split_dir = arrow / "parquet" / config / "0.0.0" / h
    split_dir.mkdir(parents=True)
    (split_dir / "parquet-train.arrow").write_bytes(bytes(4000))
    (split_dir / "parquet-test.arrow").write_bytes(bytes(1000))
    features = {k: {} for k in ("image", "mask", "full_mask", "task", "digits", "mnist_split", "mnist_index", "top",
                                "left", "uid")}
    (split_dir / "dataset_info.json").write_text(json.dumps({"features": features}))
    (split_dir.parent / f"{h}_builder.lock").write_bytes(b"")
    (arrow / f"_tmp_cache_arrow_parquet_{config}_0.0.0_{h}.lock").write_bytes(b"")
    return arrow / "parquet" / config


def test_cache_clean_removes_only_what_it_wrote_in_arrow(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`mkdir -p w/arrow && echo mine > w/arrow/README && cemnist cache clean --cache-dir w` deleted arrow/ with the
    user's README (and anything else in it). Before the fix: the dry run listed `would remove ... w/arrow` as a whole."""
    cache = tmp_path / "w"
    ours = _legacy_arrow_copy(cache / "arrow")
    (cache / "arrow" / "README").write_text("mine\n")
    (cache / "arrow" / "parquet" / "notes").mkdir()
    (cache / "arrow" / "parquet" / "notes" / "todo.txt").write_text("mine too\n")
    fake = cache / "arrow" / "parquet" / "default-0123456789abcdef" / "0.0.0"
    fake.mkdir(parents=True)
    (fake / "thesis.tex").write_text("not an Arrow copy\n")

    assert cemnist_main(["cache", "clean", "--dry-run", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert f"would remove       0.0 MB  {ours}  (an Arrow copy written by an earlier CEMNIST version" in out
    assert f"kept               0.0 MB  {cache / 'arrow' / 'README'}  (not written by CEMNIST" in out
    assert f"{cache / 'arrow' / 'parquet' / 'notes'}  (not written by CEMNIST" in out
    assert "its name is not one that datasets gave" in out
    assert f"{fake.parent}  (not written by CEMNIST: it holds 0.0.0/thesis.tex" in out
    assert ours.is_dir()

    assert cemnist_main(["cache", "clean", "--cache-dir", str(cache)]) == 0
    capsys.readouterr()
    assert not ours.exists() and not list((cache / "arrow").glob("*.lock"))
    assert (cache / "arrow" / "README").read_text() == "mine\n"
    assert (cache / "arrow" / "parquet" / "notes" / "todo.txt").read_text() == "mine too\n"
    assert (fake / "thesis.tex").is_file()
    # a folder that held only what CEMNIST wrote disappears as a whole
    only = tmp_path / "only"
    _legacy_arrow_copy(only / "arrow")
    assert cemnist_main(["cache", "clean", "--cache-dir", str(only)]) == 0
    assert sorted(p.name for p in only.iterdir()) == []


# --- 6. an edited spec in manifest.json is caught; verify re-derives counts, sizes and first rows -----------


def test_an_edited_spec_is_refused_by_verify_card_and_publish(tiny_release: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`seed: 0 -> 7` in a custom build's manifest.json passed `verify`, `card --dir` and `publish --dry-run`
    (which then proposed the tag of a genuine seed-7 build). Before the fix: `verify` exited 0."""
    rel = _copy(tiny_release, tmp_path / "rel")
    _rewrite_manifest(rel, lambda m: m["spec"].update(seed=7))
    for argv in (["verify", str(rel), "--quiet"], ["card", "--dir", str(rel)],
                 ["publish", str(rel), "--dry-run", "--repo-id", "me/custom", "--quiet"]):
        assert cemnist_main(argv) == 3, argv
        err = capsys.readouterr().err
        assert f"{rel / 'manifest.json'}: its spec hashes to" in err and "the spec was edited after the build" in err, err
    # a hash recomputed to match the edit: the first rows, rendered again from the spec, are other images
    _rewrite_manifest(rel, lambda m: m.update(spec_sha256=spec_sha256(m["spec"])))
    assert cemnist_main(["verify", str(rel), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "row 0 is not the image that the manifest's spec renders" in err
    assert "the spec in manifest.json is not the one these files were built from" in err
    # the hash removed: refused as well
    _rewrite_manifest(rel, lambda m: m.pop("spec_sha256"))
    assert cemnist_main(["verify", str(rel), "--quiet"]) == 3
    assert "it has no spec_sha256" in capsys.readouterr().err


def test_verify_rederives_counts_and_sizes(tiny_release: Path, tmp_path: Path) -> None:
    """Counts and sizes that the spec or the files contradict (a consistent hash recomputed) passed verify.
    Before the fix: verify_release raised nothing."""
    from cemnist_data import CemnistIntegrityError

    rel = _copy(tiny_release, tmp_path / "rel")

    def edit(m: dict) -> None:
        m["spec"]["validation_per_task"] = 9
        m["spec_sha256"] = spec_sha256(m["spec"])
        m["files"][split_path("joint", "test")]["bytes"] += 1

    _rewrite_manifest(rel, edit)
    with pytest.raises(CemnistIntegrityError) as info:
        verify_release(rel)
    msg = str(info.value)
    assert "manifest.json: overlap-task0/validation has 8 rows; its spec gives 9" in msg
    assert "manifest.json: joint/validation has 40 rows; its spec gives 45" in msg
    assert re.search(rf"{split_path('joint', 'test')}: ([\d,]+) bytes, SHA-256 (\w+)…; the manifest lists [\d,]+ bytes, "
                     r"SHA-256 \2…", msg)


def test_the_shipped_release_manifest_stays_valid() -> None:
    """The published 1.0.0 manifest carries no spec_sha256 and must stay valid as it is (the registry pins it),
    while the same manifest claiming another spec is refused. Before the fix: the check did not exist (ImportError)."""
    from cemnist_data.registry import load_manifest
    from cemnist_data.release import check_manifest_spec, manifest_problems

    shipped = load_manifest("1.0.0")
    assert "spec_sha256" not in shipped
    assert check_manifest_spec(shipped) is None and manifest_problems(shipped) == []
    custom = dict(shipped, spec=dict(shipped["spec"], seed=7))  # the same manifest claiming another spec
    assert "it has no spec_sha256" in check_manifest_spec(custom)


# --- 7. verify and publish check that the folder holds exactly the manifest's files --------------------------


def test_an_extra_shard_or_file_fails_verify_and_publish(tiny_release: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """An extra shard `train-00001-of-00002.parquet` passed `verify` and was uploaded by `publish`. Before the fix:
    `verify` exited 0."""
    rel = _copy(tiny_release, tmp_path / "rel")
    extra = rel / "data" / "joint" / "train-00001-of-00002.parquet"
    shutil.copy(rel / split_path("joint", "train"), extra)
    (rel / "notes.txt").write_text("mine\n")
    for argv in (["verify", str(rel), "--quiet"], ["publish", str(rel), "--dry-run", "--repo-id", "me/c", "--quiet"]):
        assert cemnist_main(argv) == 3, argv
        err = capsys.readouterr().err
        assert f"{rel} holds what its manifest does not list: data/joint/train-00001-of-00002.parquet, notes.txt" in err
        assert "Move them out of the folder" in err
    extra.unlink()
    (rel / "notes.txt").unlink()
    assert cemnist_main(["verify", str(rel), "--quiet"]) == 0


def test_a_swapped_label_in_id2label_fails_verify(tiny_release: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Swapping two names in id2label.json passed `verify` and `publish`. Before the fix: `verify` exited 0."""
    rel = _copy(tiny_release, tmp_path / "rel")
    labels = json.loads((rel / "id2label.json").read_text())
    labels["1"], labels["2"] = labels["2"], labels["1"]
    (rel / "id2label.json").write_text(json.dumps(labels, indent=2) + "\n")
    assert cemnist_main(["verify", str(rel), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert f"{rel / 'id2label.json'} is not the label map of CEMNIST (differs at ids ['1', '2'])" in err
    assert cemnist_main(["publish", str(rel), "--dry-run", "--repo-id", "me/c", "--quiet"]) == 3
    assert "is not the label map of CEMNIST" in capsys.readouterr().err


# --- 9. FIFOs and /dev/zero in a release folder: refused at once, memory bounded ---------------------------


def test_fifos_and_dev_zero_are_refused_without_reading(tiny_release: Path, tmp_path: Path) -> None:
    """A parquet shard that is a FIFO made `verify` block for ever; one symlinked to /dev/zero grew memory without
    bound (5.5 GB in 6 s). Run in a child with 4 GiB of address space and a timeout, so the old code failed fast.
    Before the fix: the child was still blocked on the FIFO shard when the 90 s timeout ended it."""
    cases = {
        "fifo-shard": (split_path("overlap-task1", "train"), "fifo", "is a FIFO (named pipe), not a regular file"),
        "zero-shard": (split_path("joint", "test"), "zero", "is a character device, not a regular file"),
        "fifo-manifest": ("manifest.json", "fifo", "is a FIFO (named pipe), not a regular file"),
        "zero-labels": ("id2label.json", "zero", "is a character device, not a regular file"),
    }
    folders = []
    for name, (rel, kind, _) in cases.items():
        folder = _copy(tiny_release, tmp_path / name)
        (folder / rel).unlink()
        if kind == "fifo":
            os.mkfifo(folder / rel)
        else:
            (folder / rel).symlink_to("/dev/zero")
        folders.append(str(folder))
    code = """
        import sys, time
        from cemnist_data.cli import main
        for folder in sys.argv[1:]:
            t0 = time.monotonic()
            rc = main(["verify", folder, "--quiet"])
            print(f"{folder}: rc {rc} in {time.monotonic() - t0:.1f} s", flush=True)
    """
    proc = _child(code, *folders, limit_memory=True)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for folder, (name, (rel, _, message)) in zip(folders, cases.items()):
        assert re.search(rf"{folder}: rc 3 in \d+\.\d s", proc.stdout), (name, proc.stdout, proc.stderr[-3000:])
        assert f"{folder}/{rel} {message}" in proc.stderr, (name, proc.stderr[-3000:])
        assert float(proc.stdout.split(f"{folder}: rc 3 in ")[1].split()[0]) < 20


def test_an_oversized_shard_is_refused_before_it_is_read(tiny_release: Path, tmp_path: Path) -> None:
    """A (sparse) shard far larger than its manifest lists was read whole into memory. Before the fix: all 3 GiB
    were read, then "not a readable parquet file"."""
    from cemnist_data import CemnistIntegrityError, load_dataset

    folder = _copy(tiny_release, tmp_path / "rel")
    shard = folder / split_path("overlap-task0", "test")
    with open(shard, "r+b") as f:
        f.truncate(3 * 2**30)  # 3 GiB of holes: no disk used
    with pytest.raises(CemnistIntegrityError, match=r"is 3,221,225,472 bytes, more than the [\d,]+ bytes allowed for it "
                       r"\(twice the [\d,]+ bytes its manifest lists, plus 64 MiB\)"):
        load_dataset(str(folder), "overlap-task0", split="test")


# --- 10. full disk, SIGTERM, lock files -------------------------------------------------------------------


def test_a_full_disk_gives_one_line_with_the_path(tmp_path: Path) -> None:
    """`ulimit -f` during `cemnist build` gave "[Errno 27] Error writing bytes to file. Detail: [errno 27] File too
    large" without a path or a fix (the build's lock file stayed); during a first load, a raw pyarrow OSError."""
    out, cache = tmp_path / "rel", tmp_path / "cache"
    code = """
        import sys
        from cemnist_data import load_dataset
        from cemnist_data.cli import main
        print("build rc", main(["build", "--out", sys.argv[1], *sys.argv[3:]]), flush=True)
        try:
            load_dataset("cemnist", task=0, split="test", cache_dir=sys.argv[2])
        except OSError as exc:
            print(type(exc).__name__, exc)
    """
    proc = _child(code, str(out), str(cache), *TINY_ARGS, file_size=100_000)
    assert proc.returncode == 0 and "build rc 1" in proc.stdout, proc.stderr[-3000:]
    line = _one_line(proc.stderr)
    assert f"cemnist build: error: writing the release {out} failed: a file reached the file size limit (`ulimit -f`)" in line
    assert f"on the file system of {tmp_path}; nothing was left behind. Fix: free space there" in line
    assert f"DiskFullError writing the release {cache / 'releases' / '1.0.0'} failed: a file reached" in proc.stdout
    assert sorted(p.name for p in (cache / "releases").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no partial folder, no lock file


def _stop_build(out: Path, sig: signal.Signals | None) -> tuple[subprocess.Popen[str], str]:
    """Start `cemnist build --out OUT` (a build of a few seconds); once its partial folder holds data, send ``sig``
    (None: SIGKILL). Returns the process (ended) and its stderr."""
    # SIGINT at its default in the child, as in a terminal: a shell's background job (`cmd &`, as CI may run
    # the suite) starts with SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    proc = subprocess.Popen([sys.executable, "-m", "cemnist_data.cli", "build", "--out", str(out), *BIG_ARGS],
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            partial = [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.partial-")]
            if partial and any(partial[0].rglob("*.parquet")):
                break
            assert proc.poll() is None, "the build ended before it could be stopped"
            time.sleep(0.02)
        if sig is None:
            proc.kill()
        else:
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc, err


def test_sigterm_cleans_up_like_sigint(tmp_path: Path) -> None:
    """A SIGTERM'd `cemnist build --out D` left `.D.partial-*` beside D (and D.lock). Before the fix: it died of
    the signal (return code -15) without a word."""
    out = tmp_path / "rel"
    proc, err = _stop_build(out, signal.SIGTERM)
    assert proc.returncode == 143
    line = _one_line(err)
    assert line == (f"cemnist build: interrupted (SIGTERM); nothing was written to {out} and the build's work folder "
                    "was removed")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cache_clean_finds_what_a_killed_build_left_beside_its_out(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`cemnist cache clean` could not find the `.D.partial-*` of a killed `cemnist build --out D` outside the cache;
    each build also left `D.lock` for ever. Before the fix: `cache clean DIR` was a usage error (exit 2)."""
    out = tmp_path / "work" / "rel"
    out.parent.mkdir()
    proc, _ = _stop_build(out, None)
    assert proc.returncode == -9
    (partial,) = [p for p in out.parent.iterdir() if p.name.startswith(".rel.partial-")]
    cache = tmp_path / "cache"
    assert cemnist_main(["cache", "clean", "--dry-run", "--cache-dir", str(cache), str(out.parent)]) == 0
    text = capsys.readouterr().out
    assert f"  {partial}  (left by process {proc.pid}, which no longer runs)" in text and "would remove" in text
    assert partial.is_dir()
    assert cemnist_main(["cache", "clean", "--cache-dir", str(cache), str(out.parent)]) == 0
    assert "freed" in capsys.readouterr().out
    build_release(out, spec=TINY, progress=False)
    assert sorted(p.name for p in out.parent.iterdir()) == ["rel"]  # nothing beside it: no partial, no rel.lock


# --- 11. unusable --out and $CEMNIST_CACHE: one line naming the path and the fix ---------------------------


def test_unusable_paths_give_one_line_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Symbolic-link loops gave "Symlink loop from ..." without a fix (exit 1), a 250-character name an error naming
    the hidden work folder, a non-UTF-8 name a UnicodeEncodeError from pyarrow."""
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    assert cemnist_main(["build", "--out", str(tmp_path / "loop1" / "rel"), *TINY_ARGS]) == 2
    err = capsys.readouterr().err
    assert f"--out (out_dir) {tmp_path / 'loop1' / 'rel'} is a symbolic link loop" in err and "Fix: remove the loop" in err
    monkeypatch.setenv("CEMNIST_CACHE", str(tmp_path / "loop1"))
    assert cemnist_main(["verify"]) == 2
    err = capsys.readouterr().err
    assert f"$CEMNIST_CACHE {tmp_path / 'loop1'} is a symbolic link loop" in err and "Fix: point CEMNIST_CACHE" in err
    monkeypatch.delenv("CEMNIST_CACHE")
    long = tmp_path / ("a" * 250)
    assert cemnist_main(["build", "--out", str(long), *TINY_ARGS]) == 2
    err = capsys.readouterr().err
    assert f"--out (out_dir) {long} has a name of 250 bytes" in err and "Fix: choose a name of at most 156 bytes" in err
    assert ".partial-" not in err
    bad = os.fsdecode(os.fsencode(str(tmp_path)) + b"/\xff\xfe")
    assert cemnist_main(["build", "--out", bad, *TINY_ARGS]) == 2
    err = capsys.readouterr().err
    assert "is not a valid UTF-8 path, which the parquet writer needs. Fix: choose a name" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop1", "loop2"]  # nothing created, no lock files


def test_read_only_out_says_read_only(tmp_path: Path, obey_file_modes: list[str]) -> None:
    """A read-only --out folder gave "[Errno 13]"-style messages without saying "read-only". Before the fix: the
    message said "is not writable (Permission denied)" but not "read-only"."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([*obey_file_modes, sys.executable, "-m", "cemnist_data.cli", "build", "--out", str(ro / "rel"),
                           *TINY_ARGS], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    line = _one_line(proc.stderr)
    assert f"cannot write the release {ro / 'rel'}: {ro} is not writable (Permission denied)" in line
    assert f"Fix: choose an --out (out_dir=) in a folder you can write to ({ro} is read-only for this user)" in line


# --- 12. Ctrl-C during a build: one line, exit 130 --------------------------------------------------------


def test_ctrl_c_gives_one_line_and_exit_130(tmp_path: Path) -> None:
    """SIGINT to `cemnist build` printed a 30-line KeyboardInterrupt traceback. Before the fix: the process died
    of SIGINT (return code -2) after the traceback."""
    out = tmp_path / "rel"
    proc, err = _stop_build(out, signal.SIGINT)
    assert proc.returncode == 130
    assert _one_line(err) == (f"cemnist build: interrupted (Ctrl-C); nothing was written to {out} and the build's "
                              "work folder was removed")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- 15. JSON nested 200,000 levels deep: an error naming the file ------------------------------------------


def test_deeply_nested_json_names_the_file(tiny_release: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A manifest.json, id2label.json or verification record nested 200,000 levels deep gave "maximum recursion
    depth exceeded" without the file's name. Before the fix: `verify` exited 1 with that message."""
    from cemnist_data import load_dataset
    from cemnist_data.loader import _record_path

    deep = "[" * 200_000 + "]" * 200_000
    rel = _copy(tiny_release, tmp_path / "manifest")
    (rel / "manifest.json").write_text(deep)
    for argv in (["verify", str(rel), "--quiet"], ["card", "--dir", str(rel)], ["info", str(rel)]):
        assert cemnist_main(argv) == 3, argv
        err = capsys.readouterr().err
        assert f"{rel / 'manifest.json'} is not valid JSON for CEMNIST: it is nested too deeply to parse" in err, err
    rel = _copy(tiny_release, tmp_path / "labels")
    (rel / "id2label.json").write_text(deep)
    assert cemnist_main(["verify", str(rel), "--quiet"]) == 3
    assert f"{rel / 'id2label.json'} cannot be read ({rel / 'id2label.json'} is not valid JSON" in capsys.readouterr().err
    # a verification record in the cache: "not verified yet", with a warning naming it
    cache = tmp_path / "cache"
    rel = _copy(tiny_release, tmp_path / "record")
    load_dataset(str(rel), "joint", split="test", cache_dir=cache)
    record = _record_path(rel, cache)
    record.write_text(deep)
    ds = load_dataset(str(rel), "joint", split="test", cache_dir=cache)
    assert ds.num_rows == 40
    assert json.loads(record.read_text())["folder"] == str(rel)  # rewritten after verifying again

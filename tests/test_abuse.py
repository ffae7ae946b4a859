"""The standing check of docs/RELIABILITY.md ("Misuse cases, first round"): every reproduction of a careless or
hostile use, as a test.

Each test is named in a row of that table (the row number is in the comment above it). Every
test failed on the code before its fix; the list only grows. Releases are built from tiny specs,
so the whole file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from cemnist_data import CemnistSpec, build_release, verify_release
from cemnist_data.cli import main as cemnist_main
from cemnist_data.png import decode_png_column, encode_png_batch

TINY = CemnistSpec(train_per_task=24, validation_per_task=8, test_pool=40)
TINY_ARGS = ["--train-per-task", "24", "--validation-per-task", "8", "--test-pool", "40", "--quiet"]


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- 1. --overwrite never deletes or hides what the user had ------------------------------------


def test_overwrite_refuses_a_project_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`cemnist build --out . --overwrite` in a project folder deleted it (src/thesis.tex vanished)."""
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "thesis.tex").write_text("\\chapter{Results}\n")
    (proj / "notes.md").write_text("todo\n")
    before = _tree(tmp_path)
    monkeypatch.chdir(proj)
    assert cemnist_main(["build", "--out", ".", "--overwrite", *TINY_ARGS]) == 2
    err = capsys.readouterr().err
    assert f"{proj} holds what is not part of a CEMNIST release: notes.md, src/" in err and "Fix: choose a new folder" in err
    assert _tree(tmp_path) == before  # nothing deleted, nothing hidden
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]  # no .proj.old-*, no partial, no lock


def test_overwrite_refuses_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--out results.csv --overwrite` turned the file into a folder, the file surviving as .results.csv.old-*."""
    f = tmp_path / "results.csv"
    f.write_text("method,miou\nnaive,0.31\n")
    before = _tree(tmp_path)
    for extra in (["--overwrite"], []):
        assert cemnist_main(["build", "--out", str(f), *extra, *TINY_ARGS]) == 2
        err = capsys.readouterr().err
        assert f"{f} is a file, not a release folder" in err and "--overwrite" not in err.split("Fix:")[1]
    assert _tree(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_overwrite_refuses_a_release_folder_holding_user_files(tmp_path: Path) -> None:
    """A release folder with something else in it (a user's notes, a folder) is not replaced either."""
    from cemnist_data.workdirs import CemnistPathError

    out = tmp_path / "rel"
    build_release(out, spec=TINY, progress=False)
    (out / "data" / "my-labels.csv").write_text("x\n")
    (out / "analysis").mkdir()
    before = _tree(tmp_path)
    with pytest.raises(CemnistPathError, match=r"not part of a CEMNIST release: analysis/, data/my-labels.csv"):
        build_release(out, spec=TINY, progress=False, overwrite=True)
    assert _tree(tmp_path) == before
    # a foreign manifest.json does not make a folder a release
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text('{"name": "webapp", "version": "2.1"}')
    with pytest.raises(CemnistPathError, match="not a CEMNIST manifest"):
        build_release(other, spec=TINY, progress=False, overwrite=True)
    assert (other / "manifest.json").read_text() == '{"name": "webapp", "version": "2.1"}'


def test_overwrite_still_replaces_a_release_or_an_empty_folder(tmp_path: Path) -> None:
    """What --overwrite is for keeps working: a release (even a damaged one) and an empty folder are replaced."""
    out = tmp_path / "rel"
    build_release(out, spec=TINY, progress=False)
    (out / "manifest.json").write_text("{garbage")  # the loader's advice for a damaged release is --overwrite
    build_release(out, spec=TINY, progress=False, overwrite=True)
    verify_release(out)
    empty = tmp_path / "empty"
    empty.mkdir()
    build_release(empty, spec=TINY, progress=False)
    verify_release(empty)
    # no lock files left (docs/RELIABILITY.md, second round, data side, row 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "rel"]


# --- 12. bounded PNG decompression ---------------------------------------------------------------


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def _png_bomb(megabytes: int) -> bytes:
    """A PNG whose header says 60x60 grayscale and whose one IDAT inflates to ``megabytes`` MiB."""
    head = encode_png_batch(np.zeros((1, 60, 60), np.uint8))[0][: 8 + 25]  # signature + IHDR
    c = zlib.compressobj(9)
    z = b"".join(c.compress(bytes(1 << 20)) for _ in range(megabytes)) + c.flush()
    return head + _png_chunk(b"IDAT", z) + _png_chunk(b"IEND", b"")


def test_png_bomb_is_refused_without_inflating_it() -> None:
    """decode_png_column inflated a crafted PNG completely (any size) before checking its length."""
    good = encode_png_batch(np.full((2, 60, 60), 7, np.uint8))
    bomb = _png_bomb(256)  # 256 MiB of pixel data in about 250 kB
    assert len(bomb) < 400_000
    column = pa.array([good[0], good[1], bomb], type=pa.binary())
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            decode_png_column(column)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"decoding allocated {peak / 2**20:.0f} MiB for a 60x60 image"
    assert re.match(r"row 2: the PNG pixel data inflates to more than 3660 bytes", str(info.value))
    with pytest.raises(ValueError, match=r"row 0: the PNG pixel data inflates to more than 3660 bytes[\s\S]*\(mask column\)"):
        decode_png_column(pa.array([bomb]), name="mask")


def test_truncated_and_corrupt_pixel_data_name_the_row() -> None:
    """Short or garbled pixel data gives a ValueError naming the row, not a raw zlib.error."""
    pngs = encode_png_batch(np.arange(3 * 3600, dtype=np.uint32).reshape(3, 60, 60).astype(np.uint8))
    head = pngs[1][: 8 + 25]
    short = head + _png_chunk(b"IDAT", zlib.compress(bytes(61 * 59))) + _png_chunk(b"IEND", b"")
    with pytest.raises(ValueError, match=r"row 1: the PNG pixel data inflates to 3599 bytes, but its header promises exactly 3660"):
        decode_png_column(pa.array([pngs[0], short]))
    garbled = head + _png_chunk(b"IDAT", b"\x78\x9c" + bytes(range(200, 255)) * 4) + _png_chunk(b"IEND", b"")
    with pytest.raises(ValueError, match=r"row 1: the PNG pixel data is not a valid zlib stream"):
        decode_png_column(pa.array([pngs[0], garbled]))
    assert (decode_png_column(pa.array(pngs))[2] == np.arange(7200, 10800).reshape(60, 60).astype(np.uint8)).all()


def test_a_bomb_in_a_release_file_is_reported_with_the_file(tmp_path: Path) -> None:
    """In a release folder, the error of a crafted image names the parquet file and the row."""
    import pyarrow.parquet as pq

    from cemnist_data import CemnistIntegrityError
    from cemnist_data.release import split_path

    out = tmp_path / "rel"
    build_release(out, spec=TINY, progress=False)
    rel = split_path("overlap-task1", "validation")
    table = pq.read_table(out / rel)
    images = table.column("image").combine_chunks()
    pngs = images.field("bytes").to_pylist()
    pngs[3] = _png_bomb(64)
    crafted = pa.StructArray.from_arrays([pa.array(pngs, type=pa.binary()), images.field("path")], names=["bytes", "path"])
    pq.write_table(table.set_column(0, "image", crafted), out / rel)
    with pytest.raises(CemnistIntegrityError, match=rf"{rel}[^\n]*row 3: the PNG pixel data inflates to more than 3660 bytes"):
        verify_release(out, configs=["overlap-task1"])


# --- 4 (build). sizes are checked against a stated limit; a large build says what it costs ----------


def test_an_endless_build_is_refused_at_once(tmp_path: Path) -> None:
    """`cemnist build --train-per-task 100000000` started a build that would never end."""
    out = tmp_path / "huge"
    proc = subprocess.run(
        [sys.executable, "-m", "cemnist_data.cli", "build", "--out", str(out), "--train-per-task", "100000000"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "would render 1,000,010,000 images" in proc.stderr and "The limit is 1,000,000 images" in proc.stderr
    assert "--max-images 1000010000" in proc.stderr and "GB on disk" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_large_build_prints_its_estimate_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Above 100,000 rendered images, the estimate (size, time) is printed before anything happens."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cemnist_main(["build", "--out", str(blocker), "--train-per-task", "20000", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "a large build: 210,000 images rendered, 362,500 rows, about 381 MB on disk, about 42 s on 2 cores" in err
    assert cemnist_main(["build", "--out", str(tmp_path / "x"), "--test-pool", "5000", "--max-images", "4000"]) == 2
    assert "The limit is 4,000 images" in capsys.readouterr().err


def test_estimate_matches_the_published_release() -> None:
    """The estimate is grounded: rows bound the 1.0.0 release's rows, bytes within 15% of its files."""
    from cemnist_data.buildsize import estimate_build
    from cemnist_data.registry import load_manifest

    manifest = load_manifest("1.0.0")
    est = estimate_build(CemnistSpec())
    rows = sum(s["num_rows"] for c in manifest["configs"].values() for s in c["splits"].values())
    size = sum(f["bytes"] for f in manifest["files"].values())
    assert est.images == 35_000 and rows <= est.rows <= 1.25 * rows
    assert 0.85 * size <= est.bytes <= 1.15 * size


# --- 11. work folders of killed builds are cleaned, safely; `cemnist cache clean` --------------------


def _killed_build(out: Path) -> Path:
    """Start a real build of ``out`` in another process, SIGKILL it mid-way; returns its partial folder."""
    code = (
        "import sys; from cemnist_data import CemnistSpec, build_release; "
        "build_release(sys.argv[1], spec=CemnistSpec(train_per_task=4000, validation_per_task=500), progress=False)"
    )
    from cemnist_data.workdirs import tree_size

    proc = subprocess.Popen([sys.executable, "-c", code, str(out)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            partial = [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.partial-")]
            if partial and tree_size(partial[0]) > 50_000:  # mid-way: parquet data written
                break
            assert proc.poll() is None, "the build ended before it could be killed"
            time.sleep(0.02)
        proc.kill()
    finally:
        proc.wait()
    assert proc.returncode == -9 and not out.exists()
    (partial,) = [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.partial-")]
    return partial


def test_cache_clean_removes_what_a_killed_build_left(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A build killed with -9 left a .DIR.partial-* folder that nothing removed."""
    from cemnist_data.workdirs import make_work_dir, tree_size

    cache = tmp_path / "cache"
    (cache / "releases").mkdir(parents=True)
    partial = _killed_build(cache / "releases" / "custom")
    size = tree_size(partial)
    assert size > 50_000
    live = make_work_dir(cache / "releases" / "other", "download")  # this test process: alive
    (live / "f.parquet").write_bytes(bytes(5000))
    legacy = cache / "releases" / ".1.0.0.partial-0123456789ab"  # an older CEMNIST: no owner recorded
    legacy.mkdir()
    (legacy / "x.parquet").write_bytes(bytes(3000))
    user = cache / "releases" / ".notes.partial-draft"  # not one of ours: never touched, never listed
    user.mkdir()
    (user / "draft.txt").write_text("mine")

    assert cemnist_main(["cache", "clean", "--dry-run", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert f"would remove {size / 1e6:>9.1f} MB  {partial}  (left by process" in out and "which no longer runs)" in out
    assert f"{live}  (in use by running process {os.getpid()})" in out
    assert f"{legacy}  (made by an older CEMNIST that did not record its owner; changed 0 min ago" in out
    assert f"would free {size / 1e6:.1f} MB in {cache}" in out and "dry run: nothing was removed" in out
    assert partial.is_dir() and "draft" not in out

    assert cemnist_main(["cache", "clean", "--cache-dir", str(cache)]) == 0
    assert f"freed {size / 1e6:.1f} MB in {cache}" in capsys.readouterr().out
    assert not partial.exists() and live.is_dir() and legacy.is_dir() and (user / "draft.txt").read_text() == "mine"

    old = 25 * 3600
    for p in [legacy, *legacy.rglob("*")]:  # untouched for 25 h: no build runs that long without writing
        os.utime(p, (p.stat().st_atime - old, p.stat().st_mtime - old))
    assert cemnist_main(["cache", "clean", "--cache-dir", str(cache)]) == 0
    assert "untouched for 25 h" in capsys.readouterr().out and not legacy.exists() and live.is_dir()


def test_the_next_build_removes_a_dead_build_s_partial_only(tmp_path: Path) -> None:
    """The next build of the same folder removes what a dead build of it left; a live one's is kept."""
    from cemnist_data.workdirs import make_work_dir

    out = tmp_path / "rel"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = make_work_dir(out, "partial", create=False)
    stale = stale.with_name(stale.name.replace(f"-{os.getpid()}-", f"-{dead.pid}-"))
    stale.mkdir()
    (stale / "data").mkdir()
    (stale / "data" / "train.parquet").write_bytes(bytes(1000))
    live = make_work_dir(out, "partial")
    foreign_old = tmp_path / ".rel.old-0123456789ab"  # what the old code left of a user's folder
    foreign_old.mkdir()
    (foreign_old / "thesis.tex").write_text("keep me")
    build_release(out, spec=TINY, progress=False)
    assert not stale.exists() and live.is_dir() and (foreign_old / "thesis.tex").read_text() == "keep me"
    verify_release(out)


# --- 8. paths that cannot be used: clear errors naming the path and the fix; read-only caches work --


def _read_only(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        if not p.is_symlink():
            p.chmod(0o555 if p.is_dir() else 0o444)


def _run_without_write_access(code: str, *args: str, home: Path,
                              prefix: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python that cannot write where file modes say so (``prefix``: the
    ``obey_file_modes`` fixture of tests/conftest.py, which drops root's overriding capabilities)."""
    env = dict(os.environ, HOME=str(home), HF_HUB_OFFLINE="1")
    env.pop("CEMNIST_CACHE", None)
    return subprocess.run([*prefix, sys.executable, "-c", textwrap.dedent(code), *args], env=env, cwd=str(home),
                          capture_output=True, text=True, timeout=300)


def test_a_read_only_complete_cache_is_usable(release, tmp_path: Path, obey_file_modes: list[str]) -> None:
    """A read-only but complete, verified cache failed with PermissionError on its lock file; a build
    into a read-only folder and a first load into a read-only empty cache gave raw tracebacks."""
    from cemnist_data.loader import resolve_release

    ro = tmp_path / "cache"
    shutil.copytree(release.path, ro / "releases" / "1.0.0")
    resolve_release("cemnist", cache_dir=ro, progress=False)  # verified (and recorded) while writable
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    _read_only(ro)
    _read_only(empty)
    code = """
        import sys
        from cemnist_data import load_dataset
        from cemnist_data.cli import main
        ds = load_dataset("cemnist", task=1, split="validation", cache_dir=sys.argv[1])
        print("rows", ds.num_rows, ds[0]["image"].size)
        try:
            load_dataset("cemnist", task=1, split="validation", cache_dir=sys.argv[2])
        except PermissionError as exc:
            print("empty:", exc)
        print("build rc", main(["build", "--out", sys.argv[2] + "/rel", "--train-per-task", "24", "--quiet"]))
    """
    proc = _run_without_write_access(code, str(ro), str(empty), home=tmp_path, prefix=obey_file_modes)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rows 500 (60, 60)" in proc.stdout
    assert (f"empty: the cache {empty / 'releases'} is read-only and holds no release 1.0.0. Fix: use a writable cache"
            in proc.stdout), proc.stdout
    assert "build rc 1" in proc.stdout
    assert f"cannot write the release {empty}/rel: {empty} is not writable (Permission denied). Fix: choose an --out" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in empty.iterdir()) == []


def test_cache_pointing_to_a_file_names_the_setting_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """$CEMNIST_CACHE pointing to a file gave a raw NotADirectoryError/FileExistsError traceback."""
    from cemnist_data import load_dataset
    from cemnist_data.workdirs import CemnistPathError

    f = tmp_path / "cache.txt"
    f.write_text("not a folder")
    monkeypatch.setenv("CEMNIST_CACHE", str(f))
    with pytest.raises(CemnistPathError, match=rf"\$CEMNIST_CACHE {f} is a file, not a folder\. Fix: point CEMNIST_CACHE to a folder"):
        load_dataset("cemnist", task=0, split="test")
    monkeypatch.setenv("CEMNIST_CACHE", str(f / "sub"))
    assert cemnist_main(["verify"]) == 2
    assert f"$CEMNIST_CACHE {f / 'sub'} cannot be a folder: {f} is a file. Fix:" in capsys.readouterr().err
    assert f.read_text() == "not a folder"
    with pytest.raises(CemnistPathError, match=rf"cache_dir \(--cache-dir\) {f} is a file"):
        load_dataset("cemnist", task=0, split="test", cache_dir=f)


def test_a_file_where_the_cache_keeps_a_release_is_not_overwritten(tmp_path: Path) -> None:
    """The loader said "pass overwrite=True", an option it does not have; it must say what works."""
    from cemnist_data import load_dataset
    from cemnist_data.workdirs import CemnistPathError

    (tmp_path / "releases").mkdir()
    f = tmp_path / "releases" / "1.0.0"
    f.write_text("a file in the way")
    with pytest.raises(CemnistPathError) as info:
        load_dataset("cemnist", task=0, split="test", cache_dir=tmp_path)
    msg = str(info.value)
    assert f"{f}, where the cache keeps this release, is a file, not a folder. Fix: move or delete that file" in msg
    assert "overwrite" not in msg and f.read_text() == "a file in the way"

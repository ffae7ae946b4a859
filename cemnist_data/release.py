"""Writing a release folder: a valid Hugging Face dataset repository built from a spec.

Layout::

    README.md                      card: YAML (configs, dataset_info, licence) + DATASET_CARD body
    eval.yaml                      registers the repo as a Hub benchmark (tasks: final mIoU (bg), test pool)
    manifest.json                  spec, tasks, rows and decoded-content hash per config/split, file SHA-256s
    id2label.json                  label id -> name, as Hub segmentation models read it
    .gitattributes                 Git LFS rules, so that a plain `git push` to the Hub works
    images/preview.png             the card's preview picture (one row per task)
    data/<config>/<split>-00000-of-00001.parquet   masks are palette PNGs (pixel value = label id)

The folder is written into a temporary sibling and renamed into place at the end, under a file
lock, so an interrupted build never leaves a folder that a later load would accept.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from .card import EVAL_YAML, eval_yaml_text, render_readme
from .content import ContentHasher
from .features import FEATURES
from .fileio import atomic_write_bytes, atomic_write_text, file_sha256
from .mnist import load_mnist
from .labels import id2label_json, mask_palette_bytes
from .png import encode_png_batch
from .preview import PREVIEW_PATH, preview_png
from .progress import progress_enabled
from .registry import MNIST_FILES, shipped_manifest_for
from .render import Rendered
from .scenario import apply_view, pool_stream, stream_source, in_test_split, train_stream, view_digits
from .spec import MODES, SPLITS, CemnistSpec, config_name, parse_config_name
from .buildsize import MAX_BUILD_IMAGES, check_build_size
from .workdirs import (check_release_target, disk_full_error, is_not_writable, make_work_dir, path_lock, remove_stale_work_dirs,
                       remove_tree, resolve_path)

__all__ = ["build_release", "build_release_locked", "split_path", "MANIFEST_NAME", "MANIFEST_FORMAT", "SPEC_HASH_KEY",
           "spec_sha256", "check_manifest_spec", "manifest_problems", "first_row_problems"]

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "cemnist-manifest/1"
CHUNK = 2048  # images rendered, encoded and written at once (bounds peak memory)
PREVIEW_PER_TASK = 6  # train images per task in the card's preview picture
GITATTRIBUTES = """\
# Large files go to Git LFS, as on every Hugging Face dataset repo, so that a plain `git push` works.
*.parquet filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.png filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
"""


SPEC_HASH_KEY = "spec_sha256"
"""Manifest field: SHA-256 of the manifest's own spec (see :func:`spec_sha256`). Every manifest written now carries
it, except a rebuild of a published release whose shipped manifest has none (1.0.0), which the registry pins."""


def split_path(config: str, split: str) -> str:
    """Relative path of a split's parquet file inside a release folder."""
    return f"data/{config}/{split}-00000-of-00001.parquet"


def spec_sha256(spec: dict[str, Any]) -> str:
    """SHA-256 of a manifest's ``spec`` as compact JSON with sorted keys."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _carries_spec_hash(manifest: dict[str, Any]) -> bool:
    """Whether a manifest must carry :data:`SPEC_HASH_KEY`: all but those of a shipped release that has none."""
    shipped = shipped_manifest_for(manifest)
    return shipped is None or SPEC_HASH_KEY in shipped


def check_manifest_spec(manifest: dict[str, Any]) -> str | None:
    """Why a manifest's spec cannot be trusted (in words), or None.

    The spec must be a valid :class:`CemnistSpec` and hash to the manifest's :data:`SPEC_HASH_KEY`; the
    published 1.0.0 release has no such field, and its spec is pinned by the shipped manifest instead.
    """
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        return "its 'spec' is not a mapping"
    try:
        CemnistSpec.from_dict(spec)
    except (TypeError, ValueError) as exc:
        return f"its spec is not valid ({exc})"
    recorded = manifest.get(SPEC_HASH_KEY)
    if recorded is None:
        if _carries_spec_hash(manifest):
            return (f"it has no {SPEC_HASH_KEY}, the hash of its own spec that the manifest of every custom build carries: "
                    "it was edited, or written by an older cemnist")
        return None
    want = spec_sha256(spec)
    if recorded != want:
        return (f"its spec hashes to {want[:16]}…, but the manifest records {SPEC_HASH_KEY} {str(recorded)[:16]}…: "
                "the spec was edited after the build")
    return None


def manifest_problems(manifest: dict[str, Any]) -> list[str]:
    """What a (spec-checked) manifest says that its spec contradicts: tasks, configs, row counts, file list."""
    spec = CemnistSpec.from_dict(manifest["spec"])
    problems = []
    if manifest.get("tasks") != spec.tasks:
        problems.append(f"manifest.json: tasks {manifest.get('tasks')!r}, but its spec gives {spec.tasks}")
    names = spec.config_names()
    if sorted(manifest["configs"]) != sorted(names):
        problems.append(f"manifest.json: configs {sorted(manifest['configs'])}, but its spec gives {sorted(names)}")
        return problems
    for cfg in names:
        _, task = parse_config_name(cfg)
        times = spec.num_tasks if task is None else 1
        want = {"train": times * spec.train_per_task, "validation": times * spec.validation_per_task}
        splits = manifest["configs"][cfg].get("splits", {})
        for split in SPLITS:
            rows = splits.get(split, {}).get("num_rows")
            if split == "test":
                ok = rows == spec.test_pool if task is None else isinstance(rows, int) and 0 < rows <= spec.test_pool
                if not ok:
                    problems.append(f"manifest.json: {cfg}/test has {rows!r} rows; its spec gives "
                                    + (f"{spec.test_pool}" if task is None else f"1 to {spec.test_pool}"))
            elif rows != want[split]:
                problems.append(f"manifest.json: {cfg}/{split} has {rows!r} rows; its spec gives {want[split]}")
    for t in range(spec.num_tasks):
        a, b = (manifest["configs"][config_name(m, t)]["splits"].get("test") for m in MODES)
        if a != b:
            problems.append(f"manifest.json: the test split of task {t} differs between the modes ({a} vs {b}); "
                            "it is the same split in both")
    files = manifest.get("files")
    want_files = {split_path(c, s) for c in names for s in SPLITS}
    if not isinstance(files, dict) or set(files) != want_files:
        got = set(files) if isinstance(files, dict) else set()
        diff = sorted(got ^ want_files)
        problems.append(f"manifest.json: its 'files' do not list exactly the {len(want_files)} split files of its "
                        f"spec ({', '.join(diff[:4])}{' …' if len(diff) > 4 else ''})")
    if manifest.get("mnist_sha256") != {name: f.sha256 for name, f in MNIST_FILES.items()}:
        problems.append("manifest.json: its mnist_sha256 are not the pinned MNIST hashes")
    return problems


ROWS_RERENDERED = 2
"""Rows at the start of each train and validation split (and of the joint test) that verification renders again
from a custom build's spec."""


def first_row_problems(spec: CemnistSpec, heads: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Render the first rows of each split in ``heads`` again from ``spec`` and compare where their digits come
    from (digits, MNIST indices, positions, uid): a spec that is not the one the files were built from (another
    seed, setting or size) renders other digits. ``heads`` maps a split's relative path to its first rows
    (``digits``, ``mnist_index``, ``top``, ``left``, ``uid``); task test splits are skipped (they are filtered)."""
    sources = stream_source(spec, load_mnist())
    problems: list[str] = []
    for rel, rows in sorted(heads.items()):
        cfg, split = rel.split("/")[1], rel.rsplit("/", 1)[1].split("-", 1)[0]
        mode, task = parse_config_name(cfg)
        if split == "test":
            if task is not None:
                continue
            stream = pool_stream(spec)
        else:
            stream = train_stream(spec, mode="overlap" if task is None else mode, task=task or 0, split=split)
        n = min(len(rows), stream.size)
        layout = stream.render(spec, sources, 0, n)
        for i in range(n):
            keep = layout.classes[i] >= 0
            want = {"digits": layout.classes[i][keep].tolist(), "mnist_index": layout.mnist_index[i][keep].tolist(),
                    "top": layout.top[i][keep].tolist(), "left": layout.left[i][keep].tolist(),
                    "uid": f"{stream.name}/{i:06d}"}
            got = {k: rows[i].get(k) for k in want}
            if got != want:
                problems.append(f"{rel}: row {i} is not the image that the manifest's spec renders (digits {got['digits']} "
                                f"at MNIST {got['mnist_index']}, the spec gives {want['digits']} at {want['mnist_index']})")
                break
    if problems:
        more = f" (and {len(problems) - 1} more splits)" if len(problems) > 1 else ""
        return [f"{problems[0]}{more}: the spec in manifest.json is not the one these files were built from"]
    return []


@dataclass
class _SplitWriter:
    path: Path
    writer: pq.ParquetWriter | None = None
    hasher: ContentHasher = field(default_factory=ContentHasher)

    def write(self, table: pa.Table, cols: dict[str, Any]) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, FEATURES.arrow_schema, compression="zstd")
        self.writer.write_table(table, row_group_size=len(table))
        self.hasher.update(cols)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def arrow_num_bytes(path: Path) -> int:
    """A split's ``num_bytes`` as ``datasets`` defines it: the Arrow size of its tables, read one row
    group at a time, as the ``parquet`` builder of ``datasets`` reads and writes them."""
    pf = pq.ParquetFile(path)
    if pf.metadata.num_row_groups == 0:
        return 0
    batch = pf.metadata.row_group(0).num_rows
    return sum(pa.Table.from_batches([b]).nbytes for b in pf.iter_batches(batch_size=batch))


def _lists(layout: Rendered, idx: np.ndarray | None) -> dict[str, pa.Array]:
    cls = layout.classes if idx is None else layout.classes[idx]
    lengths = (cls >= 0).sum(axis=1)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    active = cls >= 0
    out = {}
    for name, arr, typ in (
        ("digits", cls, pa.int64()),
        ("mnist_index", layout.mnist_index if idx is None else layout.mnist_index[idx], pa.int32()),
        ("top", layout.top if idx is None else layout.top[idx], pa.int16()),
        ("left", layout.left if idx is None else layout.left[idx], pa.int16()),
    ):
        values = pa.array(arr[active].astype(typ.to_pandas_dtype()), type=typ)
        out[name] = pa.ListArray.from_arrays(offsets, values)
    return out


def _image_struct(pngs: list[bytes]) -> pa.Array:
    return pa.StructArray.from_arrays(
        [pa.array(pngs, type=pa.binary()), pa.nulls(len(pngs), type=pa.string())], names=["bytes", "path"]
    )


class _ReleaseBuilder:
    def __init__(self, spec: CemnistSpec, root: Path, *, mnist_dir: str | None, workers: int):
        self.spec = spec
        self.root = root
        self.mnist = load_mnist(mnist_dir=mnist_dir)
        self.sources = stream_source(spec, self.mnist)
        self.executor = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        self.writers: dict[tuple[str, str], _SplitWriter] = {}
        self.preview: list[tuple[np.ndarray, np.ndarray]] = []  # (images, masks) of each overlap task's first train images

    def writer(self, config: str, split: str) -> _SplitWriter:
        key = (config, split)
        if key not in self.writers:
            self.writers[key] = _SplitWriter(self.root / split_path(config, split))
        return self.writers[key]

    def encode(self, arr: np.ndarray) -> list[bytes]:
        return encode_png_batch(arr, executor=self.executor)

    def encode_mask(self, arr: np.ndarray) -> list[bytes]:
        """Label maps as palette PNGs: the pixel values (label ids) are unchanged, viewers show colours."""
        return encode_png_batch(arr, executor=self.executor, palette=mask_palette_bytes())

    def emit(
        self,
        config: str,
        split: str,
        *,
        layout: Rendered,
        idx: np.ndarray | None,
        task: int,
        mask: np.ndarray,
        pngs: dict[str, list[bytes]],
        mnist_split: str,
        uids: list[str],
    ) -> None:
        n = len(uids)
        lists = _lists(layout, idx)
        table = pa.Table.from_arrays(
            [
                _image_struct(pngs["image"]),
                _image_struct(pngs["mask"]),
                _image_struct(pngs["full_mask"]),
                pa.array(np.full(n, task, dtype=np.int16)),
                lists["digits"],
                pa.array([mnist_split] * n, type=pa.string()),
                lists["mnist_index"],
                lists["top"],
                lists["left"],
                pa.array(uids, type=pa.string()),
            ],
            schema=FEATURES.arrow_schema,
        )
        take = (lambda a: a) if idx is None else (lambda a: a[idx])
        cols = {
            "image": take(layout.images),
            "mask": mask,
            "full_mask": take(layout.full_masks),
            "task": np.full(n, task, dtype=np.int64),
            "digits": take(layout.classes),
            "mnist_index": take(layout.mnist_index),
            "top": take(layout.top),
            "left": take(layout.left),
            "mnist_split": [mnist_split] * n,
            "uid": uids,
        }
        self.writer(config, split).write(table, cols)

    def build_train_splits(self, bar: tqdm) -> None:
        spec = self.spec
        for mode in MODES:
            for task in range(spec.num_tasks):
                cfg = config_name(mode, task)
                for split in ("train", "validation"):
                    stream = train_stream(spec, mode=mode, task=task, split=split)
                    keep = view_digits(spec, config_task=task, split=split)
                    for s in range(0, stream.size, CHUNK):
                        e = min(stream.size, s + CHUNK)
                        layout = stream.render(spec, self.sources, s, e)
                        mask = apply_view(layout.full_masks, keep)
                        pngs = {
                            "image": self.encode(layout.images),
                            "mask": self.encode_mask(mask),
                            "full_mask": self.encode_mask(layout.full_masks),
                        }
                        if mode == "overlap" and split == "train" and s == 0:
                            self.preview.append((layout.images[:PREVIEW_PER_TASK].copy(), mask[:PREVIEW_PER_TASK].copy()))
                        uids = [f"{stream.name}/{i:06d}" for i in range(s, e)]
                        self.emit(cfg, split, layout=layout, idx=None, task=task, mask=mask, pngs=pngs,
                                  mnist_split="train", uids=uids)
                        if mode == "overlap":
                            joint_pngs = {"image": pngs["image"], "mask": pngs["full_mask"], "full_mask": pngs["full_mask"]}
                            self.emit("joint", split, layout=layout, idx=None, task=-1, mask=layout.full_masks,
                                      pngs=joint_pngs, mnist_split="train", uids=uids)
                        bar.update(e - s)

    def build_test_splits(self, bar: tqdm) -> None:
        spec = self.spec
        stream = pool_stream(spec)
        for s in range(0, stream.size, CHUNK):
            e = min(stream.size, s + CHUNK)
            layout = stream.render(spec, self.sources, s, e)
            uids = [f"{stream.name}/{i:06d}" for i in range(s, e)]
            img_png = self.encode(layout.images)
            full_png = self.encode_mask(layout.full_masks)
            self.emit("joint", "test", layout=layout, idx=None, task=-1, mask=layout.full_masks,
                      pngs={"image": img_png, "mask": full_png, "full_mask": full_png}, mnist_split="test", uids=uids)
            for task in range(spec.num_tasks):
                seen = view_digits(spec, config_task=task, split="test")
                idx = np.flatnonzero(in_test_split(layout.classes, seen))
                mask = apply_view(layout.full_masks[idx], seen)
                full_sub = [full_png[i] for i in idx]
                pngs = {
                    "image": [img_png[i] for i in idx],
                    "mask": full_sub if len(seen) == 10 else self.encode_mask(mask),  # all seen: mask == full_mask
                    "full_mask": full_sub,
                }
                sub_uids = [uids[i] for i in idx]
                for mode in MODES:  # the test split is the same in both modes
                    self.emit(config_name(mode, task), "test", layout=layout, idx=idx, task=task, mask=mask,
                              pngs=pngs, mnist_split="test", uids=sub_uids)
            bar.update(e - s)

    def close(self) -> None:
        for w in self.writers.values():
            w.close()
        if self.executor is not None:
            self.executor.shutdown()

    def manifest(self) -> dict[str, Any]:
        spec = self.spec
        configs: dict[str, Any] = {}
        files: dict[str, Any] = {}
        for cfg in spec.config_names():
            mode, _, task = cfg.partition("-task")
            entry: dict[str, Any] = {
                "mode": "joint" if cfg == "joint" else mode,
                "task": None if cfg == "joint" else int(task),
                "splits": {},
            }
            for split in SPLITS:
                w = self.writers[(cfg, split)]
                entry["splits"][split] = {
                    "num_rows": w.hasher.num_rows,
                    "content_sha256": w.hasher.hexdigest(),
                }
                rel = split_path(cfg, split)
                files[rel] = {"sha256": file_sha256(self.root / rel), "bytes": (self.root / rel).stat().st_size,
                              "arrow_bytes": arrow_num_bytes(self.root / rel)}
            configs[cfg] = entry
        manifest = {
            "format": MANIFEST_FORMAT,
            "name": "cemnist",
            "version": spec.version,
            "spec": spec.to_dict(),
            "tasks": spec.tasks,
            "mnist_sha256": {name: f.sha256 for name, f in MNIST_FILES.items()},
            "configs": configs,
            "files": files,
        }
        if _carries_spec_hash(manifest):
            manifest[SPEC_HASH_KEY] = spec_sha256(manifest["spec"])
        return manifest


def build_release(
    out_dir: str | os.PathLike[str],
    *,
    spec: CemnistSpec | None = None,
    mnist_dir: str | os.PathLike[str] | None = None,
    workers: int = 2,
    overwrite: bool = False,
    progress: bool = True,
    max_images: int = MAX_BUILD_IMAGES,
) -> dict[str, Any]:
    """Render every config of ``spec`` and write a release folder at ``out_dir``; returns its manifest.

    The folder appears at ``out_dir`` only when complete (temporary sibling + rename, under the file
    lock ``<out_dir>.lock``, which is deleted again when the build ends). An existing ``out_dir`` is an error unless ``overwrite=True``, which
    replaces only an empty folder or a release (see :func:`~cemnist_data.workdirs.check_release_target`).
    A build of more than ``max_images`` rendered images is refused before it starts.
    """
    spec = spec or CemnistSpec()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    check_build_size(spec, max_images=max_images)
    out = resolve_path(out_dir, what="--out (out_dir)", fix="remove the loop (`ls -l` shows where each link points), or choose another --out (out_dir=)")
    check_release_target(out, overwrite=overwrite)  # fail before taking the lock or creating anything
    with ExitStack() as stack:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(path_lock(out.with_name(out.name + ".lock")))  # deleted again when the build ends
        except OSError as exc:
            if not is_not_writable(exc):
                raise
            raise PermissionError(
                f"cannot write the release {out}: {out.parent} is not writable ({exc.strerror}). "
                f"Fix: choose an --out (out_dir=) in a folder you can write to ({out.parent} is read-only for this user)",
            ) from exc
        return build_release_locked(out, spec=spec, mnist_dir=mnist_dir, workers=workers, overwrite=overwrite, progress=progress)


def build_release_locked(
    out: Path,
    *,
    spec: CemnistSpec,
    mnist_dir: str | os.PathLike[str] | None = None,
    workers: int = 2,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """:func:`build_release` for a caller that already holds the lock ``<out>.lock``.

    Work folders that killed builds of ``out`` left beside it are removed first (only those whose
    owner process is gone); ``out`` itself is checked by :func:`check_release_target`.
    """
    check_release_target(out, overwrite=overwrite)
    remove_stale_work_dirs(out.parent, target=out.name)
    tmp = make_work_dir(out, "partial")
    try:
        builder = _ReleaseBuilder(spec, tmp, mnist_dir=None if mnist_dir is None else str(mnist_dir),
                                  workers=workers)
        total = 2 * spec.num_tasks * (spec.train_per_task + spec.validation_per_task) + spec.test_pool
        with tqdm(total=total, desc=f"cemnist {spec.version} build", unit="img", disable=not progress_enabled(progress)) as bar:
            try:
                builder.build_train_splits(bar)
                builder.build_test_splits(bar)
            finally:
                builder.close()
        manifest = builder.manifest()
        atomic_write_bytes(tmp / PREVIEW_PATH, preview_png(builder.preview))
        atomic_write_text(tmp / "id2label.json", id2label_json())
        atomic_write_text(tmp / ".gitattributes", GITATTRIBUTES)
        atomic_write_text(tmp / "README.md", render_readme(manifest))
        atomic_write_text(tmp / EVAL_YAML, eval_yaml_text(manifest))
        atomic_write_text(tmp / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        check_release_target(out, overwrite=overwrite)  # again: the folder may have changed during the build
        if os.path.lexists(out):
            trash = make_work_dir(out, "old", create=False)
            os.replace(out, trash)
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(trash, out)  # put the old release back where it was
                raise
            remove_tree(trash)
        else:
            os.replace(tmp, out)
    except BaseException as exc:
        if tmp.exists():
            remove_tree(tmp)
        full = disk_full_error(exc, target=out, doing=f"writing the release {out}")
        if full is not None:
            raise full from exc
        raise
    return manifest

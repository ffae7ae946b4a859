"""Offline-first loading: verified local cache -> Hub (pinned tag) -> local regeneration.

Every path ends with the decoded-content hashes checked against the manifest that ships inside the
package. A mismatch is an error that says what differs and how to fix it; it never falls back silently.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets
import pyarrow.parquet as pq
from filelock import FileLock

from .content import ContentHasher, canonical_from_table
from .features import FEATURES
from .registry import HUB_REPO_ID, LATEST_VERSION, get_release, load_manifest
from .fileio import atomic_write_text, file_sha256
from .release import MANIFEST_NAME, build_release_locked, split_path
from .spec import MODES, SPLITS, CemnistSpec, config_name, parse_config_name

__all__ = [
    "load_dataset",
    "resolve_release",
    "verify_release",
    "release_info",
    "cache_root",
    "ReleaseFolder",
    "CemnistIntegrityError",
]

log = logging.getLogger("cemnist")
VERIFIED_NAME = ".cemnist-verified.json"
Source = Literal["auto", "cache", "hub", "generate"]


class CemnistIntegrityError(RuntimeError):
    """A release folder or cache does not match the manifest it is checked against."""


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir`` > ``$CEMNIST_CACHE`` > ``$XDG_CACHE_HOME/cemnist`` > ``~/.cache/cemnist``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser().resolve()
    if os.environ.get("CEMNIST_CACHE"):
        return Path(os.environ["CEMNIST_CACHE"]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base).resolve() / "cemnist"


@dataclass(frozen=True)
class ReleaseFolder:
    """A release folder whose content has been verified (see :func:`resolve_release`)."""

    path: Path
    manifest: dict[str, Any]

    @property
    def spec(self) -> CemnistSpec:
        return CemnistSpec.from_dict(self.manifest["spec"])

    def file(self, config: str, split: str) -> Path:
        return self.path / split_path(config, split)


def _read_manifest(folder: Path) -> dict[str, Any]:
    p = folder / MANIFEST_NAME
    if not p.is_file():
        raise CemnistIntegrityError(
            f"{folder} is not a CEMNIST release folder: it has no {MANIFEST_NAME}. "
            "Build one with `cemnist build --out DIR`."
        )
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CemnistIntegrityError(f"{p} is not valid JSON ({exc}); the folder is corrupted. Rebuild it with `cemnist build --out {folder} --overwrite`.") from exc


def _content_view(manifest: dict[str, Any]) -> dict[str, Any]:
    """The parts of a manifest that identify content (file bytes excluded)."""
    return {k: manifest[k] for k in ("format", "name", "version", "spec", "tasks", "mnist_sha256", "configs") if k in manifest}


def compare_manifests(found: dict[str, Any], expected: dict[str, Any], where: Path) -> None:
    a, b = _content_view(found), _content_view(expected)
    if a == b:
        return
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key == "configs":
            for cfg in sorted(set(a.get("configs", {})) | set(b.get("configs", {}))):
                for split in SPLITS:
                    x = a.get("configs", {}).get(cfg, {}).get("splits", {}).get(split)
                    y = b.get("configs", {}).get(cfg, {}).get("splits", {}).get(split)
                    if x != y:
                        diffs.append(f"{cfg}/{split}: found {x}, expected {y}")
        elif a.get(key) != b.get(key):
            diffs.append(f"{key}: found {a.get(key)!r}, expected {b.get(key)!r}")
    raise CemnistIntegrityError(
        f"the manifest of {where} does not match the manifest shipped with this package for release "
        f"{expected.get('version')}:\n  " + "\n  ".join(diffs[:12]) + (f"\n  ... ({len(diffs)} differences)" if len(diffs) > 12 else "")
        + f"\nFix: delete {where} and load again (it is rebuilt or re-downloaded), or run `cemnist build --out {where} --overwrite`."
    )


def _content_hash(path: Path) -> tuple[int, str]:
    table = pq.read_table(path)
    h = ContentHasher()
    h.update(canonical_from_table(table))
    return h.num_rows, h.hexdigest()


def verify_release(
    folder: str | os.PathLike[str],
    *,
    expected: dict[str, Any] | None = None,
    configs: list[str] | None = None,
    record: bool = True,
) -> dict[str, Any]:
    """Re-hash the decoded content of a release folder against its manifest (and ``expected``).

    Checks every split of ``configs`` (default: all). With ``record``, writes the verified files'
    SHA-256s to ``.cemnist-verified.json`` so later loads only re-hash file bytes. Returns the
    folder's manifest; raises :class:`CemnistIntegrityError` naming each mismatch and the fix.
    """
    folder = Path(folder)
    manifest = _read_manifest(folder)
    if expected is not None:
        compare_manifests(manifest, expected, folder)
    names = list(manifest["configs"]) if configs is None else configs
    problems = []
    files: dict[str, str] = {}
    for cfg in names:
        if cfg not in manifest["configs"]:
            raise ValueError(f"config {cfg!r} is not in {folder}; it has {list(manifest['configs'])}")
        for split in SPLITS:
            rel = split_path(cfg, split)
            want = manifest["configs"][cfg]["splits"][split]
            p = folder / rel
            if not p.is_file():
                problems.append(f"{rel}: missing")
                continue
            try:
                rows, digest = _content_hash(p)
            except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) on bad parquet
                problems.append(f"{rel}: unreadable ({type(exc).__name__}: {exc})")
                continue
            if rows != want["num_rows"] or digest != want["content_sha256"]:
                problems.append(f"{rel}: {rows} rows, content {digest[:16]}…; manifest says {want['num_rows']} rows, {want['content_sha256'][:16]}…")
                continue
            files[rel] = file_sha256(p)
    if problems:
        raise CemnistIntegrityError(
            f"{folder} failed verification:\n  " + "\n  ".join(problems)
            + f"\nFix: delete {folder} and load again, or rebuild it with `cemnist build --out {folder} --overwrite`."
        )
    if record:
        rec_path = folder / VERIFIED_NAME
        old = json.loads(rec_path.read_text()) if rec_path.is_file() else {}
        old_files = old.get("files", {}) if old.get("version") == manifest["version"] else {}
        old_files.update(files)
        try:
            atomic_write_text(rec_path, json.dumps({"version": manifest["version"], "files": old_files}, indent=1, sort_keys=True))
        except OSError as exc:  # read-only folder: verification stands, only the shortcut is lost
            log.warning("could not record verification in %s: %s", rec_path, exc)
    return manifest


def _check_files_fast(folder: Path, manifest: dict[str, Any], config: str, splits: list[str]) -> bool:
    """True when ``config``'s files match the SHA-256s recorded at verification time.

    Returns False when no record exists for them yet (content must then be verified). Raises
    :class:`CemnistIntegrityError` when a recorded file changed (corrupted or truncated cache).
    """
    rec_path = folder / VERIFIED_NAME
    if not rec_path.is_file():
        return False
    rec = json.loads(rec_path.read_text(encoding="utf-8"))
    if rec.get("version") != manifest.get("version"):
        return False
    for split in splits:
        rel = split_path(config, split)
        if rel not in rec.get("files", {}):
            return False
        p = folder / rel
        if not p.is_file():
            raise CemnistIntegrityError(f"{p} is missing from the verified release {folder}. Fix: delete {folder} and load again, or run `cemnist build --out {folder} --overwrite`.")
        digest = file_sha256(p)
        if digest != rec["files"][rel]:
            raise CemnistIntegrityError(
                f"{p} changed since it was verified (SHA-256 {digest[:16]}…, recorded {rec['files'][rel][:16]}…, "
                f"{p.stat().st_size} bytes): the file is corrupted or truncated. "
                f"Fix: delete {folder} and load again (it is rebuilt), or run `cemnist build --out {folder} --overwrite`."
            )
    return True


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _download_from_hub(repo_id: str, revision: str, dest: Path) -> Path:
    """Download a release snapshot into a temporary sibling of ``dest``; returns that folder."""
    from huggingface_hub import snapshot_download

    tmp = dest.parent / f".{dest.name}.download-{uuid.uuid4().hex[:12]}"
    snapshot_download(repo_id=repo_id, repo_type="dataset", revision=revision, local_dir=str(tmp))
    return tmp


def _hub_unreachable_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub import errors

    return (errors.OfflineModeIsEnabled, errors.LocalEntryNotFoundError, errors.HfHubHTTPError, OSError)


def resolve_release(
    path: str = "cemnist",
    *,
    version: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    source: Source = "auto",
    configs: list[str] | None = None,
    progress: bool = True,
) -> ReleaseFolder:
    """Find or create a verified release folder.

    ``path`` is ``"cemnist"`` (the published release ``version``, default latest), a local release
    folder, or a Hub dataset repo id. For ``"cemnist"`` the order is: verified cache, then the Hub at
    the pinned tag (skipped when ``HF_HUB_OFFLINE=1`` or unreachable), then regeneration from the
    MNIST copy inside the package. ``source`` forces one step (``"cache"``, ``"hub"``, ``"generate"``).
    """
    if source not in ("auto", "cache", "hub", "generate"):
        raise ValueError(f"unknown source {source!r}; valid: 'auto', 'cache', 'hub', 'generate'")
    if path != "cemnist" and Path(path).expanduser().is_dir():
        folder = Path(path).expanduser().resolve()
        manifest = _read_manifest(folder)
        shipped = shipped_manifest_for(manifest)
        if shipped is not None:  # the published spec: content must match the release
            compare_manifests(manifest, shipped, folder)
        for cfg in list(manifest["configs"]) if configs is None else configs:
            if not _check_files_fast(folder, manifest, cfg, list(SPLITS)):
                verify_release(folder, configs=[cfg])
        return ReleaseFolder(folder, manifest)

    if path == "cemnist":
        version = version or LATEST_VERSION
        release = get_release(version)
        repo_id, revision = HUB_REPO_ID, release.tag
        expected: dict[str, Any] | None = load_manifest(version)
        folder = cache_root(cache_dir) / "releases" / version
    else:
        if path.count("/") != 1:
            raise ValueError(f"path {path!r} is neither 'cemnist', an existing release folder, nor a Hub repo id 'owner/name'")
        repo_id, revision = path, (f"v{version}" if version else "main")
        expected = None
        folder = cache_root(cache_dir) / "hub" / repo_id.replace("/", "--") / revision
    folder.parent.mkdir(parents=True, exist_ok=True)

    with FileLock(str(folder) + ".lock"):
        if folder.is_dir():
            manifest = _read_manifest(folder)
            if expected is not None:
                compare_manifests(manifest, expected, folder)
            for cfg in list(manifest["configs"]) if configs is None else configs:
                if not _check_files_fast(folder, manifest, cfg, list(SPLITS)):
                    verify_release(folder, expected=expected, configs=[cfg])
            return ReleaseFolder(folder, manifest)
        if source == "cache":
            raise FileNotFoundError(f"no cached release at {folder}; load with source='auto' to download or build it")

        if source in ("auto", "hub") and not (source == "auto" and _hub_offline()):
            try:
                tmp = _download_from_hub(repo_id, revision, folder)
            except _hub_unreachable_errors() as exc:
                if source == "hub" or expected is None:
                    raise
                log.warning("CEMNIST: Hub %s@%s not reachable (%s); regenerating locally.", repo_id, revision, type(exc).__name__)
            else:
                try:
                    if expected is None:  # a fork or mirror repo that claims a published release is held to it
                        expected = shipped_manifest_for(_read_manifest(tmp))
                    manifest = verify_release(tmp, expected=expected)
                    os.replace(tmp, folder)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                return ReleaseFolder(folder, manifest)
        if expected is None:
            raise FileNotFoundError(f"{repo_id}@{revision} is not cached and cannot be regenerated (no shipped manifest)")
        spec = CemnistSpec.from_dict(expected["spec"])
        log.info("CEMNIST: building release %s into %s", version, folder)
        manifest = build_release_locked(folder, spec=spec, progress=progress)
        compare_manifests(manifest, expected, folder)
        _record_built(folder, manifest)
        return ReleaseFolder(folder, manifest)


def _record_built(folder: Path, manifest: dict[str, Any]) -> None:
    """A fresh build computed its content hashes from the rendered arrays: record its files as verified."""
    files = {rel: info["sha256"] for rel, info in manifest["files"].items()}
    atomic_write_text(folder / VERIFIED_NAME, json.dumps({"version": manifest["version"], "files": files}, indent=1, sort_keys=True))


def shipped_manifest_for(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The shipped manifest a folder must match: same published version and the same spec; else None."""
    from .registry import RELEASES

    if manifest.get("version") not in RELEASES:
        return None
    shipped = load_manifest(manifest["version"])
    return shipped if manifest.get("spec") == shipped["spec"] else None


def _select_config(task: int | None, config: str | None, mode: str, spec: CemnistSpec) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {list(MODES)}")
    if config is not None:
        if task is not None:
            raise ValueError("pass either task=... (with mode=...) or config=..., not both")
        parse_config_name(config)
        if config not in spec.config_names():
            raise ValueError(f"config {config!r} is not in this release; configs: {spec.config_names()}")
        return config
    if task is None:
        raise ValueError(f"pass task=<int in [0, {spec.num_tasks - 1}]> or config=<name>; configs: {spec.config_names()}")
    spec.check_task(task)
    return config_name(mode, task)


def load_dataset(
    path: str = "cemnist",
    *,
    task: int | None = None,
    config: str | None = None,
    split: str | None = None,
    mode: str = "overlap",
    version: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    source: Source = "auto",
) -> datasets.Dataset | datasets.DatasetDict:
    """Load one task (or ``config="joint"``) of CEMNIST as ``datasets`` objects.

    ``load_dataset("cemnist", task=2)`` returns a ``DatasetDict`` with ``train``, ``validation``
    and ``test``; ``split="train"`` returns that ``Dataset``. See :func:`resolve_release` for
    ``path``, ``version`` and ``source``.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {list(MODES)}")
    if task is not None and (isinstance(task, bool) or not isinstance(task, int)):
        raise ValueError(f"task must be an integer, got {task!r}")
    # validate against the shipped spec before touching the cache, so bad input fails fast
    if path == "cemnist":
        _select_config(task, config, mode, CemnistSpec.from_dict(load_manifest(version or LATEST_VERSION)["spec"]))
    rel = resolve_release(path, version=version, cache_dir=cache_dir, source=source, configs=[])
    cfg = _select_config(task, config, mode, rel.spec)
    splits = [split] if split is not None else list(SPLITS)
    if not _check_files_fast(rel.path, rel.manifest, cfg, splits):
        verify_release(rel.path, configs=[cfg])
    files = {s: str(rel.file(cfg, s)) for s in splits}
    dd = datasets.load_dataset(
        "parquet",
        data_files=files,
        features=FEATURES,
        cache_dir=str(cache_root(cache_dir) / "arrow"),
    )
    return dd[split] if split is not None else dd


def release_info(
    path: str = "cemnist", *, version: str | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Settings, tasks, sizes and content hashes of a release (no data is read for ``"cemnist"``)."""
    if path == "cemnist":
        manifest = load_manifest(version or LATEST_VERSION)
    else:
        manifest = resolve_release(path, version=version, cache_dir=cache_dir, configs=[]).manifest
    spec = manifest["spec"]
    return {
        "version": manifest["version"],
        "setting": spec["setting"],
        "class_order": spec["class_order"],
        "tasks": manifest["tasks"],
        "spec": spec,
        "configs": {
            cfg: {s: dict(v["splits"][s]) for s in SPLITS} for cfg, v in manifest["configs"].items()
        },
    }

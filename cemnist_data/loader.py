"""Offline-first loading: verified local cache -> Hub (pinned tag) -> local regeneration.

Every path ends with the decoded-content hashes checked against the manifest that ships inside the
package. A mismatch is an error that says what differs and how to fix it; it never falls back silently.

What is read is what was verified: a split's parquet bytes are read once, their SHA-256 is compared
with the record of an earlier verification (or, the first time, their decoded content is hashed and
compared with the manifest), and the table is parsed from those same bytes. No Arrow copy is written
anywhere, so there is no second, unchecked copy of the data. Verification records live in the cache
(``$CEMNIST_CACHE/verified/``), never in the folder that was verified; an unreadable record means
"not verified yet".
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .fileio import MAX_JSON_BYTES, RefusedFileError, atomic_write_text, parse_json, read_json_file, read_regular_file
from .progress import progress_enabled
from .release import ROWS_RERENDERED, MANIFEST_NAME, check_manifest_spec, first_row_problems, manifest_problems, split_path
from .registry import (
    CITATION,
    DESCRIPTION,
    HOMEPAGE,
    HUB_REPO_ID,
    LATEST_VERSION,
    LICENSE,
    RELEASES,
    display_version,
    get_release,
    load_manifest,
    shipped_manifest_for,
)
from .spec import MODES, SPLITS, CemnistSpec, config_name, parse_config_name
from .workdirs import (CemnistPathError, NoSuchFolderError, check_folder_location, is_not_writable, make_work_dir, path_lock,
                       remove_stale_work_dirs, resolve_path)

if TYPE_CHECKING:
    import datasets
    import pyarrow as pa

__all__ = [
    "load_dataset",
    "resolve_release",
    "verify_release",
    "release_info",
    "cache_root",
    "ReleaseFolder",
    "CemnistIntegrityError",
    "shipped_manifest_for",
]

log = logging.getLogger("cemnist")
RECORDS_DIR = "verified"
MAX_SHARD_BYTES = 4 * 2**30
"""Largest parquet shard that is read: 4 GiB, and at most twice the size its manifest lists plus
:data:`SHARD_SLACK_BYTES` (a larger file is refused before it is read)."""
SHARD_SLACK_BYTES = 64 * 2**20
Source = Literal["auto", "cache", "hub", "generate"]
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_REPO_EXTRAS = ["README.md", MANIFEST_NAME, "id2label.json", "eval.yaml", ".gitattributes", "images/*"]


class CemnistIntegrityError(RuntimeError):
    """A release folder or cache does not match the manifest it is checked against."""


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir`` > ``$CEMNIST_CACHE`` > ``$XDG_CACHE_HOME/cemnist`` > ``~/.cache/cemnist``.

    Raises :class:`~cemnist_data.workdirs.CemnistPathError` naming the setting and the fix when the
    chosen path is (or lies inside) a file.
    """
    if cache_dir is not None:
        raw, what, fix = cache_dir, "cache_dir (--cache-dir)", "pass a folder."
    elif os.environ.get("CEMNIST_CACHE"):
        raw, what = os.environ["CEMNIST_CACHE"], "$CEMNIST_CACHE"
        fix = "point CEMNIST_CACHE to a folder (or unset it to use ~/.cache/cemnist), or pass cache_dir= (--cache-dir)."
    else:
        raw = Path(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")) / "cemnist"
        what, fix = "the default cache", "set CEMNIST_CACHE to a folder, or pass cache_dir= (--cache-dir)."
    root = resolve_path(raw, what=what, fix=fix)
    check_folder_location(root, what=what, fix=fix)
    return root


@contextmanager
def _cache_lock(folder: Path) -> Iterator[bool]:
    """Hold ``<folder>.lock``; yields False without a lock when the cache cannot be written at all.

    A read-only cache can still serve a complete release: nobody with our rights can change it, and
    a release folder only ever appears or is replaced in one rename.
    """
    with ExitStack() as stack:
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(path_lock(folder.with_name(folder.name + ".lock")))  # deleted again on release
        except OSError as exc:
            if not is_not_writable(exc):
                raise
            yield False
            return
        yield True


@dataclass(frozen=True)
class ReleaseFolder:
    """A release folder whose content has been verified (see :func:`resolve_release`)."""

    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str = ""

    @property
    def spec(self) -> CemnistSpec:
        return CemnistSpec.from_dict(self.manifest["spec"])

    def file(self, config: str, split: str) -> Path:
        return self.path / split_path(config, split)


def _fix(folder: Path) -> str:
    return f"Fix: delete {folder} and load again (it is rebuilt or re-downloaded), or rebuild it with `cemnist build --out {folder} --overwrite`."


def _read_manifest(folder: Path) -> tuple[dict[str, Any], str]:
    """The folder's manifest and the SHA-256 of its bytes (:class:`NoSuchFolderError` for no folder at all).

    The manifest must be a regular file of at most :data:`~cemnist_data.fileio.MAX_JSON_BYTES`, and a
    custom build's manifest must carry the hash of its own spec (see :func:`check_manifest_spec`).
    """
    p = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise NoSuchFolderError(f"no such folder: {folder}; pass a release folder (build one with `cemnist build --out DIR`)")
    try:
        data = read_regular_file(p, max_bytes=MAX_JSON_BYTES)
    except FileNotFoundError:
        raise CemnistIntegrityError(
            f"{folder} is not a CEMNIST release folder: it has no {MANIFEST_NAME}. "
            "Build one with `cemnist build --out DIR`."
        ) from None
    except RefusedFileError as exc:
        raise CemnistIntegrityError(f"{str(exc).split(' Fix: ')[0].rstrip('.')}; the folder is corrupted. {_fix(folder)}") from None
    try:
        manifest = parse_json(data, p)
    except RefusedFileError as exc:
        raise CemnistIntegrityError(f"{exc}; the folder is corrupted. {_fix(folder)}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("configs"), dict) or "spec" not in manifest:
        raise CemnistIntegrityError(f"{p} is not a CEMNIST manifest (no 'configs' and 'spec'); the folder is corrupted. {_fix(folder)}")
    problem = check_manifest_spec(manifest)
    if problem is not None:
        raise CemnistIntegrityError(f"{p}: {problem}. {_fix(folder)}")
    return manifest, hashlib.sha256(data).hexdigest()


def _content_view(manifest: dict[str, Any]) -> dict[str, Any]:
    """The parts of a manifest that identify content (file bytes excluded)."""
    return {k: manifest[k] for k in ("format", "name", "version", "spec", "tasks", "mnist_sha256", "configs") if k in manifest}


def compare_manifests(found: dict[str, Any], expected: dict[str, Any], where: Path) -> None:
    """Raise :class:`CemnistIntegrityError` listing every content difference between two manifests."""
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
        + f"\n{_fix(where)}"
    )


# ---------------------------------------------------------------------------------------------
# verification records (in the cache, keyed by folder)


def _record_path(folder: Path, cache_dir: str | os.PathLike[str] | None) -> Path:
    key = hashlib.sha256(str(Path(folder).resolve()).encode("utf-8")).hexdigest()[:32]
    return cache_root(cache_dir) / RECORDS_DIR / f"{key}.json"


def _load_record(folder: Path, manifest_sha256: str, cache_dir: str | os.PathLike[str] | None) -> dict[str, str]:
    """``{relative path: file SHA-256}`` verified earlier for this folder and manifest.

    An absent, unreadable or malformed record, or one for another folder or manifest, is "not
    verified yet" (an empty dict): the files are then verified by content and the record rewritten.
    """
    path = _record_path(folder, cache_dir)
    try:
        rec = read_json_file(path)
    except FileNotFoundError:
        return {}
    except (OSError, RefusedFileError) as exc:
        log.warning("CEMNIST: ignoring the unreadable verification record %s (%s); the files are verified again", path, exc)
        return {}
    if not (isinstance(rec, dict) and rec.get("folder") == str(folder) and rec.get("manifest_sha256") == manifest_sha256
            and isinstance(rec.get("files"), dict)):
        if not isinstance(rec, dict):
            log.warning("CEMNIST: ignoring the malformed verification record %s; the files are verified again", path)
        return {}
    return {k: v for k, v in rec["files"].items() if isinstance(k, str) and isinstance(v, str) and len(v) == 64}


def _save_record(folder: Path, manifest_sha256: str, files: dict[str, str], cache_dir: str | os.PathLike[str] | None) -> None:
    """Add ``files`` to the folder's verification record (a lost write only costs a re-verification)."""
    if not files:
        return
    path = _record_path(folder, cache_dir)
    merged = {**_load_record(folder, manifest_sha256, cache_dir), **files}
    text = json.dumps({"folder": str(folder), "manifest_sha256": manifest_sha256, "files": merged}, indent=1, sort_keys=True)
    try:
        atomic_write_text(path, text)
    except OSError as exc:  # read-only cache: verification stands, only the shortcut is lost
        log.warning("CEMNIST: could not record the verification of %s in %s: %s", folder, path, exc)


# ---------------------------------------------------------------------------------------------
# reading and verifying split files


def _parse_table(data: bytes, where: Path) -> "pa.Table":
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(pa.BufferReader(data))
    except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) on bad parquet
        raise CemnistIntegrityError(f"{where} is not a readable parquet file ({type(exc).__name__}: {exc}). {_fix(where.parents[2])}") from exc


def _content_hash(table: "pa.Table") -> tuple[int, str]:
    from .content import ContentHasher, canonical_from_table

    h = ContentHasher()
    h.update(canonical_from_table(table))
    return h.num_rows, h.hexdigest()


def _check_split(
    folder: Path, manifest: dict[str, Any], rel: str, recorded: dict[str, str], *, parse: bool
) -> tuple[str, "pa.Table | None", bool]:
    """Check one split file; returns ``(file SHA-256, table or None, newly verified)``.

    A file recorded as verified must still have the recorded SHA-256; any other file must decode to
    the manifest's row count and content hash. Raises :class:`CemnistIntegrityError` otherwise.
    """
    cfg, split = rel.split("/")[1], rel.rsplit("/", 1)[1].split("-", 1)[0]
    p = folder / rel
    listed = manifest.get("files", {}).get(rel, {}).get("bytes") if isinstance(manifest.get("files"), dict) else None
    cap = MAX_SHARD_BYTES
    if isinstance(listed, int) and not isinstance(listed, bool) and listed >= 0:
        cap = min(cap, 2 * listed + SHARD_SLACK_BYTES)
    try:
        data = read_regular_file(p, max_bytes=cap)
    except FileNotFoundError:
        raise CemnistIntegrityError(f"{p} is missing from the release {folder}. {_fix(folder)}") from None
    except RefusedFileError as exc:
        why = str(exc).split(" Fix: ")[0].rstrip(".")
        if cap < MAX_SHARD_BYTES:
            why = why.replace("such a file may have", f"allowed for it (twice the {listed:,} bytes its manifest lists, plus 64 MiB)")
        raise CemnistIntegrityError(f"{why}. {_fix(folder)}") from None
    digest = hashlib.sha256(data).hexdigest()
    if rel in recorded:
        if recorded[rel] != digest:
            raise CemnistIntegrityError(
                f"{p} changed since it was verified (SHA-256 {digest[:16]}…, recorded {recorded[rel][:16]}…, "
                f"{len(data)} bytes): the file is corrupted or truncated. {_fix(folder)}"
            )
        return digest, (_parse_table(data, p) if parse else None), False
    table = _parse_table(data, p)
    want = manifest["configs"][cfg]["splits"][split]
    try:
        rows, content = _content_hash(table)
    except ValueError as exc:  # undecodable PNG, missing column, bad list
        raise CemnistIntegrityError(f"{p} cannot be decoded ({exc}). {_fix(folder)}") from exc
    if rows != want["num_rows"] or content != want["content_sha256"]:
        raise CemnistIntegrityError(
            f"{rel}: {rows} rows, content {content[:16]}…; manifest says {want['num_rows']} rows, "
            f"{want['content_sha256'][:16]}…. {_fix(folder)}"
        )
    return digest, table, True


def _config_rels(manifest: dict[str, Any], configs: Sequence[str], folder: Path) -> list[str]:
    rels = []
    for cfg in configs:
        if cfg not in manifest["configs"]:
            raise ValueError(f"config {cfg!r} is not in {folder}; it has {list(manifest['configs'])}")
        rels += [split_path(cfg, s) for s in SPLITS]
    return rels


def verify_release(
    folder: str | os.PathLike[str],
    *,
    expected: dict[str, Any] | None = None,
    configs: list[str] | None = None,
    record: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Re-hash the decoded content of a release folder against its manifest (and ``expected``).

    Checks every split of ``configs`` (default: all), whatever an earlier verification recorded.
    Writes nothing into ``folder``: with ``record``, the verified files' SHA-256s go to the cache
    (``$CEMNIST_CACHE/verified/``) so that later loads only re-hash file bytes. Returns the folder's
    manifest; raises :class:`CemnistIntegrityError` naming each mismatch and the fix.
    """
    from tqdm.auto import tqdm

    folder = Path(folder).resolve()
    manifest, msha = _read_manifest(folder)
    log.info("CEMNIST: verifying %s by content against %s", folder,
             "the manifest shipped with the package" if expected is not None else "its own manifest")
    if expected is not None:
        compare_manifests(manifest, expected, folder)
    rels = _config_rels(manifest, list(manifest["configs"]) if configs is None else configs, folder)
    problems: list[str] = manifest_problems(manifest) + _folder_problems(folder, manifest)
    files: dict[str, str] = {}
    heads: dict[str, list[dict[str, Any]]] = {}
    for rel in tqdm(rels, desc=f"verify {folder.name}", unit="split", disable=not progress_enabled(progress)):
        try:
            digest, table, _ = _check_split(folder, manifest, rel, {}, parse=True)
        except CemnistIntegrityError as exc:
            problems.append(str(exc).split(" Fix: ")[0])
            continue
        listed = manifest.get("files", {}).get(rel)
        size = (folder / rel).stat().st_size
        if isinstance(listed, dict) and (listed.get("sha256"), listed.get("bytes")) != (digest, size):
            n = listed.get("bytes")
            problems.append(f"{rel}: {size:,} bytes, SHA-256 {digest[:16]}…; the manifest lists "
                            f"{f'{n:,}' if isinstance(n, int) else repr(n)} bytes, SHA-256 {str(listed.get('sha256'))[:16]}…")
        assert table is not None
        heads[rel] = table.slice(0, ROWS_RERENDERED).select(["digits", "mnist_index", "top", "left", "uid"]).to_pylist()
        files[rel] = digest
    if expected is None and not problems:  # a custom build: its spec must render its files' first rows
        problems += first_row_problems(CemnistSpec.from_dict(manifest["spec"]), heads)
    if problems:
        raise CemnistIntegrityError(f"{folder} failed verification:\n  " + "\n  ".join(problems) + f"\n{_fix(folder)}")
    if record:
        _save_record(folder, msha, files, cache_dir)
    return manifest


_RELEASE_EXTRAS = ("manifest.json", "README.md", "id2label.json", "eval.yaml", ".gitattributes", "images/preview.png")
"""What a release folder holds besides the split files its manifest lists: the manifest, the card and its picture."""
_TOLERATED = (".cache/huggingface", ".cemnist-verified.json")
"""Left by ``huggingface_hub`` downloads and by earlier CEMNIST versions; hidden, so neither uploaded nor read."""


def _folder_problems(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """What the release folder holds besides its manifest's files, the card and its picture; and an
    ``id2label.json`` that is not the one every release has (see :func:`cemnist_data.labels.id2label_json`;
    a missing one is left to ``publish``, which refuses an incomplete folder)."""
    from .labels import ID2LABEL

    files = manifest.get("files")
    allowed = set(_RELEASE_EXTRAS) | (set(files) if isinstance(files, dict) else set())
    dirs = {d for f in allowed for d in (Path(f).parents) if str(d) != "."}
    foreign = []
    for root, subdirs, names in os.walk(folder):
        for name in sorted(subdirs) + sorted(names):
            rel = (Path(root) / name).relative_to(folder).as_posix()
            if rel.startswith(_TOLERATED):
                continue
            is_dir = (Path(root) / name).is_dir() and not (Path(root) / name).is_symlink()
            if (is_dir and Path(rel) not in dirs) or (not is_dir and rel not in allowed):
                foreign.append(rel + ("/" if is_dir else ""))
        subdirs[:] = [d for d in subdirs if Path((Path(root) / d).relative_to(folder).as_posix()) in dirs]
    problems = []
    foreign.sort()
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" (and {len(foreign) - 5} more)" if len(foreign) > 5 else "")
        problems.append(f"{folder} holds what its manifest does not list: {shown}; `datasets` and the Hub would take "
                        "files there as part of the release. Move them out of the folder")
    p = folder / "id2label.json"
    try:
        labels = read_json_file(p)
    except FileNotFoundError:
        pass  # a folder without the card files can still be verified; `publish` refuses it as incomplete
    except (OSError, RefusedFileError) as exc:
        problems.append(f"{p} cannot be read ({str(exc).split(' Fix: ')[0].rstrip('.')})")
    else:
        want = {str(i): name for i, name in ID2LABEL.items()}
        if labels != want:
            diff = sorted(k for k in set(want) | set(labels if isinstance(labels, dict) else {})
                          if not isinstance(labels, dict) or labels.get(k) != want.get(k))
            problems.append(f"{p} is not the label map of CEMNIST (differs at ids {diff[:6]}); every release has "
                            f"{want}")
    return problems


def _ensure_verified(rel: ReleaseFolder, configs: Sequence[str], cache_dir: str | os.PathLike[str] | None, *,
                     fresh: bool = False) -> None:
    """Check the files of ``configs`` (against the record of an earlier verification; ``fresh``: by content)."""
    recorded = {} if fresh else _load_record(rel.path, rel.manifest_sha256, cache_dir)
    new: dict[str, str] = {}
    for r in _config_rels(rel.manifest, configs, rel.path):
        digest, _, fresh = _check_split(rel.path, rel.manifest, r, recorded, parse=False)
        if fresh:
            new[r] = digest
    _save_record(rel.path, rel.manifest_sha256, new, cache_dir)


def read_verified_table(
    release: ReleaseFolder, config: str, split: str, *, cache_dir: str | os.PathLike[str] | None = None
) -> "pa.Table":
    """The Arrow table of one split, parsed from the very bytes that were checked (see module doc)."""
    rel = split_path(config, split)
    recorded = _load_record(release.path, release.manifest_sha256, cache_dir)
    digest, table, fresh = _check_split(release.path, release.manifest, rel, recorded, parse=True)
    if fresh:
        _save_record(release.path, release.manifest_sha256, {rel: digest}, cache_dir)
    assert table is not None
    return table


# ---------------------------------------------------------------------------------------------
# resolving a path to a verified release folder


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _hub_patterns(configs: Sequence[str] | None) -> list[str]:
    """``allow_patterns`` of a Hub download: the repo's small files and only the requested configs."""
    return list(_REPO_EXTRAS) + (["data/*/*"] if configs is None else [f"data/{c}/*" for c in configs])


def _download_from_hub(repo_id: str, revision: str, dest: Path, *, allow_patterns: list[str]) -> Path:
    """Download the files matching ``allow_patterns`` into a temporary sibling of ``dest``; returns it."""
    from huggingface_hub import snapshot_download

    remove_stale_work_dirs(dest.parent, target=dest.name)  # what killed loads of it left
    tmp = make_work_dir(dest, "download", create=False)  # named after this process: see cemnist_data.workdirs
    try:
        snapshot_download(repo_id=repo_id, repo_type="dataset", revision=revision, local_dir=str(tmp),
                          allow_patterns=allow_patterns)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp / ".cache", ignore_errors=True)  # huggingface_hub's download metadata
    return tmp


def _hub_unreachable_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub import errors

    return (errors.OfflineModeIsEnabled, errors.LocalEntryNotFoundError, errors.HfHubHTTPError, OSError)


def _classify_path(path: str | os.PathLike[str]) -> tuple[str, Any]:
    """``("package", None)``, ``("local", folder)`` or ``("hub", repo_id)``; "no such folder" otherwise."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be 'cemnist', a release folder or a Hub dataset id, got {path!r}")
    s = os.fspath(path)
    if s in ("cemnist", HUB_REPO_ID):
        return "package", None
    p = Path(s).expanduser()
    if p.is_dir():
        return "local", p.resolve()
    if p.exists():
        raise NoSuchFolderError(f"no such folder: {s} is a file; pass a release folder (built with `cemnist build --out DIR`)")
    if _HUB_ID_RE.match(s) and ".." not in s:
        return "hub", s
    raise NoSuchFolderError(
        f"no such folder: {s}. Pass 'cemnist' (the published release), an existing release folder "
        "(build one with `cemnist build --out DIR`), or a Hub dataset id 'owner/name'."
    )


def _package_version(version: str | None, revision: str | None) -> str:
    """The release version asked for by ``version`` and/or ``revision`` (a tag ``v<version>``; ``"main"``:
    the latest release, unless ``version`` names one)."""
    from_rev = None
    if revision is not None and str(revision) == "main":
        revision = None
    if revision is not None:
        m = re.fullmatch(r"v?(\d+\.\d+\.\d+)", str(revision))
        if m is None:
            raise ValueError(
                f"revision {revision!r} is not a CEMNIST release tag; the package loads releases by tag: "
                f"{[r.tag for r in RELEASES.values()]}"
            )
        from_rev = m.group(1)
    if version is not None and from_rev is not None and version != from_rev:
        raise ValueError(f"version={version!r} contradicts revision={revision!r}; pass one of them")
    v = version or from_rev or LATEST_VERSION
    get_release(v)  # precise error for unknown versions
    return v


def _verified(folder: Path, configs: Sequence[str] | None, expected: dict[str, Any] | None,
              cache_dir: str | os.PathLike[str] | None, *, fresh: bool = False) -> ReleaseFolder:
    manifest, msha = _read_manifest(folder)
    if expected is not None:
        compare_manifests(manifest, expected, folder)
    rel = ReleaseFolder(folder, manifest, msha)
    _ensure_verified(rel, list(manifest["configs"]) if configs is None else configs, cache_dir, fresh=fresh)
    return rel


def _missing_configs(folder: Path, manifest: dict[str, Any], configs: Sequence[str] | None) -> list[str]:
    wanted = list(manifest["configs"]) if configs is None else list(configs)
    return [c for c in wanted if c in manifest["configs"] and not all((folder / split_path(c, s)).is_file() for s in SPLITS)]


def _fetch_configs(repo_id: str, revision: str, folder: Path, manifest: dict[str, Any], msha: str,
                   configs: list[str], cache_dir: str | os.PathLike[str] | None) -> None:
    """Download the files of ``configs`` into an existing cached folder, verified before they move in."""
    tmp = _download_from_hub(repo_id, revision, folder, allow_patterns=[f"data/{c}/*" for c in configs])
    try:
        files = {}
        for r in _config_rels(manifest, configs, folder):
            digest, _, _ = _check_split(tmp, manifest, r, {}, parse=True)
            files[r] = digest
        for r in files:
            (folder / r).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / r, folder / r)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _save_record(folder, msha, files, cache_dir)


def resolve_release(
    path: str | os.PathLike[str] = "cemnist",
    *,
    version: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    source: Source = "auto",
    configs: list[str] | None = None,
    progress: bool = True,
    force: bool = False,
) -> ReleaseFolder:
    """Find or create a verified release folder holding ``configs`` (default: all).

    ``path`` is ``"cemnist"`` or ``"cemnist/cemnist"`` (the published release ``version``, or tag
    ``revision="v<version>"``; default latest), a local release folder, or a Hub dataset repo id. For
    the published release the order is: verified cache, then the Hub at the pinned tag (skipped when
    ``HF_HUB_OFFLINE=1`` or unreachable), then regeneration from the MNIST copy inside the package.
    ``source`` forces one step (``"cache"``, ``"hub"``, ``"generate"``). A Hub download fetches only
    the files of ``configs`` (``allow_patterns``); later calls fetch further configs into the same
    cached folder. ``force`` (``download_mode="force_redownload"``) replaces the cached files of ``configs``:
    re-downloaded from the Hub, or else the release is rebuilt; a local folder is verified again by content.

    Over 100 lines on purpose: the order above (local folder, cache, Hub, regeneration) reads as one sequence.
    """
    if source not in ("auto", "cache", "hub", "generate"):
        raise ValueError(f"unknown source {source!r}; valid: 'auto', 'cache', 'hub', 'generate'")
    kind, target = _classify_path(path)
    if kind == "local":
        folder = target
        manifest, _ = _read_manifest(folder)
        return _verified(folder, configs, shipped_manifest_for(manifest), cache_dir, fresh=force)

    if kind == "package":
        version = _package_version(version, revision)
        repo_id, rev = HUB_REPO_ID, get_release(version).tag
        expected: dict[str, Any] | None = load_manifest(version)
        folder = cache_root(cache_dir) / "releases" / version
    else:
        if version is not None and revision is not None and revision != f"v{version}":
            raise ValueError(f"version={version!r} contradicts revision={revision!r}; pass one of them")
        repo_id, rev = target, revision or (f"v{version}" if version else "main")
        expected = None
        folder = cache_root(cache_dir) / "hub" / repo_id.replace("/", "--") / rev
        if not folder.is_dir() and source == "auto" and _hub_offline():
            raise NoSuchFolderError(
                f"no such folder: {path}; and the Hub dataset {repo_id!r} (revision {rev!r}) is not cached while the "
                "Hub is offline (HF_HUB_OFFLINE=1)"
            )
    if force and source == "cache":
        raise ValueError("download_mode='force_redownload' contradicts source='cache' (which never fetches or builds)")
    if source == "cache" and not folder.is_dir():
        raise FileNotFoundError(f"no cached release at {folder}; load with source='auto' to download or build it")
    hub_allowed = source == "hub" or (source == "auto" and not _hub_offline())
    if os.path.lexists(folder) and not folder.is_dir():
        raise CemnistPathError(
            f"{folder}, where the cache keeps this release, is a file, not a folder. Fix: move or delete that "
            "file and load again, or use another cache: cache_dir= (--cache-dir) or $CEMNIST_CACHE."
        )

    with _cache_lock(folder) as writable:
        if folder.is_dir() and force:
            return _refresh(folder, repo_id, rev, version, expected, configs, cache_dir, source=source,
                            hub_allowed=hub_allowed, progress=progress)
        if folder.is_dir():
            manifest, msha = _read_manifest(folder)
            if expected is not None:
                compare_manifests(manifest, expected, folder)
            missing = _missing_configs(folder, manifest, configs)
            if missing and hub_allowed:
                try:
                    _fetch_configs(repo_id, rev, folder, manifest, msha, missing, cache_dir)
                    missing = []
                except _hub_unreachable_errors() as exc:
                    if source == "hub" or expected is None:
                        raise
                    log.warning("CEMNIST: Hub %s@%s not reachable (%s); regenerating locally.", repo_id, rev, type(exc).__name__)
            if missing and expected is not None and source in ("auto", "generate"):
                return _build_into(folder, expected, version, progress=progress, cache_dir=cache_dir, overwrite=True)
            return _verified(folder, configs, expected, cache_dir)
        if source == "cache":
            raise FileNotFoundError(f"no cached release at {folder}; load with source='auto' to download or build it")
        if not writable:
            raise PermissionError(
                f"the cache {folder.parent} is read-only and holds no release {folder.name}. Fix: use a writable "
                "cache: cache_dir= (--cache-dir) or $CEMNIST_CACHE, or fill this one once with write access."
            )

        if hub_allowed and source != "generate":
            try:
                tmp = _download_from_hub(repo_id, rev, folder, allow_patterns=_hub_patterns(configs))
            except _hub_unreachable_errors() as exc:
                if source == "hub" or expected is None:
                    raise
                log.warning("CEMNIST: Hub %s@%s not reachable (%s); regenerating locally.", repo_id, rev, type(exc).__name__)
            else:
                try:
                    manifest, msha = _read_manifest(tmp)
                    if expected is None:  # a fork or mirror repo that claims a published release is held to it
                        expected = shipped_manifest_for(manifest)
                    if expected is not None:
                        compare_manifests(manifest, expected, tmp)
                    files = {}
                    for r in _config_rels(manifest, list(manifest["configs"]) if configs is None else configs, tmp):
                        files[r], _, _ = _check_split(tmp, manifest, r, {}, parse=True)
                    os.replace(tmp, folder)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                _save_record(folder, msha, files, cache_dir)
                return ReleaseFolder(folder, manifest, msha)
        if expected is None:
            raise FileNotFoundError(f"{repo_id}@{rev} is not cached and cannot be regenerated (no shipped manifest)")
        return _build_into(folder, expected, version, progress=progress, cache_dir=cache_dir, overwrite=False)


def _refresh(folder: Path, repo_id: str, rev: str, version: str | None, expected: dict[str, Any] | None,
             configs: list[str] | None, cache_dir: str | os.PathLike[str] | None, *, source: str, hub_allowed: bool,
             progress: bool) -> ReleaseFolder:
    """``force_redownload`` of a cached folder (lock held): re-download ``configs`` from the Hub, else rebuild
    the published release; a Hub repo that cannot be reached is verified again by content, with a warning."""
    if hub_allowed:
        try:
            manifest, msha = _read_manifest(folder)
            if expected is not None:
                compare_manifests(manifest, expected, folder)
            wanted = list(manifest["configs"]) if configs is None else list(configs)
            log.info("CEMNIST: force_redownload: fetching %s of %s@%s again", wanted, repo_id, rev)
            _fetch_configs(repo_id, rev, folder, manifest, msha, wanted, cache_dir)
            return _verified(folder, configs, expected, cache_dir)
        except _hub_unreachable_errors() as exc:
            if source == "hub" or expected is None:
                raise
            log.warning("CEMNIST: Hub %s@%s not reachable (%s); rebuilding locally.", repo_id, rev, type(exc).__name__)
    if expected is not None and source in ("auto", "generate"):
        log.info("CEMNIST: force_redownload: rebuilding release %s into %s", version, folder)
        return _build_into(folder, expected, version, progress=progress, cache_dir=cache_dir, overwrite=True)
    log.warning("CEMNIST: force_redownload: %s@%s cannot be fetched (the Hub is offline) and has no shipped "
                "manifest to rebuild it from; the cached files are verified again by content", repo_id, rev)
    return _verified(folder, configs, expected, cache_dir, fresh=True)


def _build_into(folder: Path, expected: dict[str, Any], version: str | None, *, progress: bool,
                cache_dir: str | os.PathLike[str] | None, overwrite: bool) -> ReleaseFolder:
    """Regenerate a published release into ``folder`` (lock held) and record its files as verified."""
    from .release import build_release_locked

    spec = CemnistSpec.from_dict(expected["spec"])
    log.info("CEMNIST: building release %s into %s", version, folder)
    manifest = build_release_locked(folder, spec=spec, progress=progress, overwrite=overwrite)
    compare_manifests(manifest, expected, folder)
    msha = hashlib.sha256((folder / MANIFEST_NAME).read_bytes()).hexdigest()
    # a fresh build computed its content hashes from the rendered arrays: its files are verified
    _save_record(folder, msha, {rel: info["sha256"] for rel, info in manifest["files"].items()}, cache_dir)
    return ReleaseFolder(folder, manifest, msha)


# ---------------------------------------------------------------------------------------------
# load_dataset

_SAME_DATA = "the verified parquet files are read directly into memory"


def _is_default(value: Any, *defaults: Any) -> bool:
    """Whether ``value`` is one of ``defaults``: ``None`` and booleans by identity, strings and integers by
    value (an enum member, such as ``datasets.DownloadMode``, by its ``value``)."""
    v = getattr(value, "value", value)
    for d in defaults:
        if d is None or isinstance(d, bool):
            if v is d:
                return True
        elif isinstance(v, (str, int)) and not isinstance(v, bool) and v == d:
            return True
    return False


# option: (values that do what datasets does by default, why another value is refused)
_DATASETS_OPTIONS: dict[str, tuple[tuple[Any, ...], str]] = {
    "data_dir": ((None,), "a release has fixed files per config; choose the config with name= (or task= and mode=)"),
    "data_files": ((None,), "a release has fixed files per config; choose the config with name= (or task= and mode=)"),
    "features": ((None,), "the features are fixed by the release (cemnist_data.features.FEATURES); cast after loading with .cast()"),
    "download_config": ((None,), "downloads go through huggingface_hub.snapshot_download with the files of the requested config only"),
    "download_mode": ((None, "reuse_dataset_if_exists", "reuse_cache_if_exists", "force_redownload"),
                      "valid: None, 'reuse_dataset_if_exists', 'reuse_cache_if_exists' (nothing is prepared, so both "
                      "reuse the verified files) or 'force_redownload' (re-fetch or rebuild)"),
    "verification_mode": ((None, "basic_checks", "all_checks"),
                          "decoded-content hashes are always checked; verification cannot be turned off or relaxed"),
    "keep_in_memory": ((None, True, False), "splits are always held in memory: no Arrow cache is written"),
    "save_infos": ((False,), "the release's infos are fixed by its manifest"),
    "num_proc": ((None, 1), f"there is nothing to prepare: {_SAME_DATA}"),
    "storage_options": ((None,), "releases are local folders or Hub repos; fsspec storage is not used"),
    "trust_remote_code": ((None, False, True), "CEMNIST runs no dataset script"),
    "token": ((None, True), "a token for the Hub comes from huggingface_hub (the HF_TOKEN variable or `hf auth login`); "
                            "token=True (use it) is the default"),
}


def _check_datasets_options(kwargs: dict[str, Any]) -> bool:
    """Accept ``datasets.load_dataset`` options at values that do what ``datasets`` does by default.

    Returns whether ``download_mode="force_redownload"`` was asked for. A value with another meaning is a
    ``ValueError`` naming the option, the value and why; an unknown keyword is a ``TypeError``.
    """
    unknown = sorted(k for k in kwargs if k not in _DATASETS_OPTIONS)
    if unknown:
        raise TypeError(f"load_dataset() got unexpected keyword arguments {unknown}")
    for key, value in kwargs.items():
        allowed, why = _DATASETS_OPTIONS[key]
        if key == "features" and value is not None:
            from .features import FEATURES

            if value == FEATURES:
                continue
        if not _is_default(value, *allowed):
            raise ValueError(f"load_dataset: {key}={value!r} is not supported for CEMNIST: {why}")
    if kwargs.get("trust_remote_code") is True:
        log.warning("CEMNIST: trust_remote_code=True is ignored: CEMNIST runs no dataset script")
    return _is_default(kwargs.get("download_mode"), "force_redownload")


def _choose_config(spec: CemnistSpec, *, name: str | None, task: int | None, mode: str | None) -> str:
    """The config that ``name``/``task``/``mode`` ask for; contradicting arguments are a ValueError."""
    if mode is not None and mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {list(MODES)}")
    if task is not None and (isinstance(task, bool) or not isinstance(task, int)):
        raise ValueError(f"task must be an integer, got {task!r}")
    if name is not None:
        cmode, ctask = parse_config_name(name)
        if name not in spec.config_names():
            raise ValueError(f"config {name!r} is not in this release; configs: {spec.config_names()}")
        if mode is not None and mode != cmode and not (cmode == "joint" and mode == "overlap"):
            what = "the union of the overlap tasks" if cmode == "joint" else f"mode {cmode!r}"
            raise ValueError(f"mode={mode!r} contradicts config {name!r} ({what}); pass the config alone, or task= with mode=")
        if task is not None and task != ctask:
            what = "every task" if ctask is None else f"task {ctask}"
            raise ValueError(f"task={task} contradicts config {name!r} ({what}); pass the config alone, or task= with mode=")
        return name
    if task is None:
        if mode is not None:
            raise ValueError(f"mode={mode!r} needs task=<int in [0, {spec.num_tasks - 1}]> (or a config name such as '{mode}-task0')")
        return spec.config_names()[0]  # the card's default config, as datasets.load_dataset(path) gives
    spec.check_task(task)
    return config_name(mode or "overlap", task)


def _absolute(spec: str, lengths: dict[str, int]) -> list[Any]:
    """The absolute read instructions of a split spec, through ``datasets``' public API only
    (``ReadInstruction.from_spec`` and ``.to_absolute``; each item has ``splitname``, ``from_``, ``to``).
    An unknown split name or a malformed spec is a ValueError naming the valid splits."""
    import datasets

    try:
        return datasets.ReadInstruction.from_spec(spec).to_absolute(lengths)
    except (ValueError, AssertionError, KeyError) as exc:
        raise ValueError(f"unknown split {spec!r} ({exc}); valid splits: {list(SPLITS)}, with slices such as "
                         "'train[:10%]' or 'train+validation'") from None


class _AnyLength(dict):
    """``name2len`` for reading split names only: every name is present, with a length that any slice fits."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> int:
        return 1_000_000


_NAME_CHECK_LENGTHS = _AnyLength()


def _split_request(split: Any) -> tuple[str, list[str]]:
    """``("dict", SPLITS)``, ``("one", [spec])`` or ``("list", [spec, ...])``, each spec checked."""
    import datasets

    if split is None:
        return "dict", list(SPLITS)
    if isinstance(split, (list, tuple)):
        if not split:
            raise ValueError("split=[] asks for no split; pass a split name, a list of them, or None for all")
        specs, shape = [str(s) for s in split], "list"
    elif isinstance(split, (str, datasets.NamedSplit)):
        specs, shape = [str(split)], "one"
    else:
        raise ValueError(f"split must be a string such as 'train', 'train[:10%]' or 'train+validation', a list of them, or None; got {split!r}")
    for s in specs:
        for part in _absolute(s, _NAME_CHECK_LENGTHS):
            if part.splitname not in SPLITS:
                raise ValueError(f"unknown split {part.splitname!r} in {s!r}; valid splits: {list(SPLITS)}")
    return shape, specs


def _base_splits(spec: str) -> list[str]:
    return [p.splitname for p in _absolute(spec, _NAME_CHECK_LENGTHS)]


def dataset_info(manifest: dict[str, Any], config: str) -> "datasets.DatasetInfo":
    """A ``datasets.DatasetInfo`` for one config: name, description, licence, citation, homepage, splits."""
    import datasets

    from .features import FEATURES

    release = shipped_manifest_for(manifest) is not None
    splits = datasets.SplitDict(dataset_name="cemnist")
    for s in SPLITS:
        splits.add(datasets.SplitInfo(name=s, num_examples=int(manifest["configs"][config]["splits"][s]["num_rows"]),
                                      dataset_name="cemnist"))
    what = f"release {manifest['version']}" if release else f"custom build {display_version(manifest)} (not a release)"
    return datasets.DatasetInfo(
        description=f"{DESCRIPTION} Config {config} of CEMNIST {what}, setting {manifest['spec']['setting']}.",
        citation=CITATION,
        homepage=HOMEPAGE,
        license=LICENSE,
        features=FEATURES.copy(),
        dataset_name="cemnist",
        config_name=config,
        version=str(manifest["version"]) if release else None,
        splits=splits,
    )


def _make_dataset(tables: dict[str, "pa.Table"], spec: str, info: "datasets.DatasetInfo", manifest: dict[str, Any], config: str) -> "datasets.Dataset":
    import datasets
    import pyarrow as pa
    from datasets.table import InMemoryTable

    from .features import FEATURES

    parts = [tables[a.splitname].slice(a.from_, a.to - a.from_)
             for a in _absolute(spec, {s: t.num_rows for s, t in tables.items()})]
    table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
    table = table.replace_schema_metadata(None).cast(FEATURES.arrow_schema)
    key = "|".join([config, spec] + [manifest["configs"][config]["splits"][s]["content_sha256"] for s in _base_splits(spec)])
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]
    return datasets.Dataset(InMemoryTable(table), info=info, split=datasets.NamedSplit(spec), fingerprint=fingerprint)


STREAM_SHARDS = 16
"""Shards of a streamed split (fewer for a split of fewer rows): a ``DataLoader`` gives each worker whole
shards, so up to 16 workers share the work (``datasets`` stops the workers beyond ``num_shards``)."""


def load_dataset(
    path: str | os.PathLike[str] = "cemnist",
    name: str | None = None,
    *,
    split: Any = None,
    task: int | None = None,
    config: str | None = None,
    mode: str | None = None,
    version: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    streaming: bool = False,
    source: Source = "auto",
    **kwargs: Any,
) -> Any:
    """Load one config of CEMNIST as ``datasets`` objects, the way ``datasets.load_dataset`` does.

    ``load_dataset("cemnist", "overlap-task2")`` (or ``name=``/``config=``), or
    ``load_dataset("cemnist", task=2, mode="overlap")``; without either, the default config
    ``overlap-task0``. Arguments that contradict each other (``config="overlap-task2", mode="disjoint"``)
    are a ``ValueError``. ``split`` is ``None`` (a ``DatasetDict`` of train/validation/test), a split
    with optional slicing (``"train[:10%]"``, ``"train+validation"``: a ``Dataset``) or a list of them
    (a list of ``Dataset``). ``revision="v1.0.0"`` is the tag form of ``version="1.0.0"``;
    ``revision="main"`` works with a warning (not a pinned release). ``path`` is ``"cemnist"`` (or
    ``"cemnist/cemnist"``), a local release folder, or a Hub dataset id (see :func:`resolve_release`).
    Splits are read from the verified parquet bytes into memory; no Arrow cache is written.

    ``streaming=True`` gives ``IterableDataset``(s) in :data:`STREAM_SHARDS` shards over the same
    verified data: the split is still read and verified whole first (a content hash needs every byte), so
    streaming here gives the iterable API (``shuffle(buffer_size=...)``, ``DataLoader`` workers), not a
    smaller download or less memory.

    The other options of ``datasets.load_dataset`` are accepted at the values that do what ``datasets``
    does by default (``token=None``, ``features=None``, ``num_proc=None``, ``download_mode=None``,
    ``trust_remote_code=None``, ...). ``download_mode="force_redownload"`` re-downloads the config from the
    Hub or rebuilds the release (a local folder is verified again by content). Any other value
    (``data_files=...``, ``verification_mode="no_checks"``, ``num_proc=4``) is a ``ValueError`` naming the
    option, the value and why; an unknown keyword is a ``TypeError``.
    """
    import datasets

    force = _check_datasets_options(kwargs)
    if revision is not None and str(revision) == "main":
        import warnings

        warnings.warn("revision='main' is not a pinned release: it loads the latest release this package knows "
                      f"(the package path) or whatever the repo's main branch holds now (a Hub id). Pin a release "
                      f"for results others can reproduce: revision='{get_release(LATEST_VERSION).tag}'",
                      UserWarning, stacklevel=2)
    if name is not None and config is not None and name != config:
        raise ValueError(f"name={name!r} contradicts config={config!r}; pass one of them")
    name = name if name is not None else config
    if name is not None and not isinstance(name, str):
        raise ValueError(f"name must be a config name such as 'overlap-task2', got {name!r}")
    if not isinstance(streaming, bool):
        raise ValueError(f"streaming must be True or False, got {streaming!r}")
    shape, specs = _split_request(split)
    kind, _ = _classify_path(path)
    if kind == "package":  # validate against the shipped spec before touching the cache, so bad input fails fast
        version = _package_version(version, revision)
        revision = None
        _choose_config(CemnistSpec.from_dict(load_manifest(version)["spec"]), name=name, task=task, mode=mode)
        if source not in ("auto", "cache", "hub", "generate"):
            raise ValueError(f"unknown source {source!r}; valid: 'auto', 'cache', 'hub', 'generate'")
    rel = resolve_release(path, version=version, revision=revision, cache_dir=cache_dir, source=source, configs=[])
    cfg = _choose_config(rel.spec, name=name, task=task, mode=mode)
    if force or (kind == "hub" and _missing_configs(rel.path, rel.manifest, [cfg])):
        rel = resolve_release(path, version=version, revision=revision, cache_dir=cache_dir, source=source, configs=[cfg],
                              force=force)
    needed = sorted({b for s in specs for b in _base_splits(s)}, key=SPLITS.index)
    tables = {s: read_verified_table(rel, cfg, s, cache_dir=cache_dir) for s in needed}
    info = dataset_info(rel.manifest, cfg)
    out = [_make_dataset(tables, s, info, rel.manifest, cfg) for s in specs]
    if streaming:
        streams = []
        for ds in out:
            it = ds.to_iterable_dataset(num_shards=max(1, min(STREAM_SHARDS, ds.num_rows)))
            it.info.update(info.copy())  # to_iterable_dataset keeps only the features
            streams.append(it)
        out = streams
    if shape == "one":
        return out[0]
    if shape == "list":
        return out
    return (datasets.IterableDatasetDict if streaming else datasets.DatasetDict)(dict(zip(specs, out)))


def release_info(
    path: str = "cemnist", *, version: str | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Settings, tasks, sizes and content hashes of a release (no data is read for ``"cemnist"``)."""
    if path in ("cemnist", HUB_REPO_ID):
        manifest = load_manifest(version or LATEST_VERSION)
    else:
        manifest = resolve_release(path, version=version, cache_dir=cache_dir, configs=[]).manifest
    spec = manifest["spec"]
    return {
        "version": manifest["version"],
        "display_version": display_version(manifest),
        "setting": spec["setting"],
        "class_order": spec["class_order"],
        "tasks": manifest["tasks"],
        "spec": spec,
        "configs": {
            cfg: {s: dict(v["splits"][s]) for s in SPLITS} for cfg, v in manifest["configs"].items()
        },
    }

"""Output folders that cannot destroy user data, and the temporary work folders beside them.

Two promises live here (docs/RELIABILITY.md):

* Nothing the user had is lost: :func:`check_release_target` lets a build replace only an empty
  folder or a folder that holds a CEMNIST release and nothing else; files, project folders and
  anything unexpected inside a release folder are refused with the reason.
* Nothing is left behind for ever: builds and downloads write into a sibling work folder named
  ``.<target>.<kind>-<host>-<pid>-<token>`` (see :func:`make_work_dir`). The name records the owner
  process, so a later build or ``cemnist cache clean`` can tell a folder left by a killed process
  (its owner is gone) from one that a live process is still writing, and removes only the former.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import socket
import stat
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .fileio import RefusedFileError, read_json_file

__all__ = [
    "CemnistPathError",
    "NoSuchFolderError",
    "CleanItem",
    "DiskFullError",
    "LockBusyError",
    "WorkDir",
    "clean_cache",
    "clean_work_dirs_in",
    "disk_full_error",
    "path_lock",
    "resolve_path",
    "check_folder_location",
    "check_release_target",
    "find_work_dirs",
    "make_work_dir",
    "remove_tree",
    "tree_size",
]

log = logging.getLogger("cemnist")

WorkKind = Literal["partial", "download", "old"]
_KINDS = ("partial", "download", "old")
_NAME_RE = re.compile(
    r"^\.(?P<target>.+)\.(?P<kind>partial|download|old)-"
    r"(?:(?P<host>[A-Za-z0-9_.-]{1,64})-(?P<pid>\d{1,10})-)?(?P<token>[0-9a-f]{12})$"
)
UNOWNED_AFTER_S = 24 * 3600
"""A work folder whose owner cannot be checked is removable once nothing in it changed for this long."""
# what a release folder may hold besides the parquet files its manifest lists (see cemnist_data.release)
_RELEASE_FILES = frozenset({
    "manifest.json", "README.md", "id2label.json", "eval.yaml", ".gitattributes", "images/preview.png",
    ".cemnist-verified.json",  # verification record of earlier versions
})
_RELEASE_DIRS = frozenset({"data", "images", ".cache"})


class CemnistPathError(ValueError):
    """A path (an argument or ``$CEMNIST_CACHE``) cannot be used as given; the message names it and the fix."""


class NoSuchFolderError(FileNotFoundError):
    """An input folder that the caller named does not exist: a usage error, exit status 2 in both commands
    (``cemnist`` and ``cemnist-baselines``)."""


def _this_host() -> str:
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "localhost"
    return host[:64]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the process exists but belongs to another user
        return True
    return True


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
            except FileNotFoundError:  # removed meanwhile
                continue
    return newest


@dataclass(frozen=True)
class WorkDir:
    """A work folder beside a target: ``.<target>.<kind>-<host>-<pid>-<token>``."""

    path: Path
    target: str
    kind: str
    host: str | None  # None: made by a CEMNIST version that did not record its owner
    pid: int | None

    @property
    def state(self) -> Literal["live", "stale", "unknown"]:
        """``stale``: its owner process is gone; ``live``: it runs; ``unknown``: another host or no owner."""
        if self.host is None or self.pid is None or self.host != _this_host():
            return "unknown"
        return "live" if _pid_alive(self.pid) else "stale"

    def removable(self, *, now: float | None = None) -> tuple[bool, str]:
        """Whether nothing can still be using this folder, and why (in words).

        Its owner process gone (same host): removable. Owner running: kept. Owner unknown (an older
        CEMNIST that did not record it) or on another host: removable only once nothing in it has
        changed for :data:`UNOWNED_AFTER_S` seconds, since a running build or download writes into its
        folder every few seconds. A leftover ``old`` folder must still hold nothing but release files.
        """
        state = self.state
        if state == "live":
            return False, f"in use by running process {self.pid}"
        if state == "stale":
            ok, why = True, f"left by process {self.pid}, which no longer runs"
        else:
            owner = "made by an older CEMNIST that did not record its owner" if self.host is None else (
                f"made on host {self.host!r} (process {self.pid}), which cannot be checked from here")
            idle = (time.time() if now is None else now) - _newest_mtime(self.path)
            if idle < UNOWNED_AFTER_S:
                return False, f"{owner}; changed {idle / 60:.0f} min ago, removable once untouched for {UNOWNED_AFTER_S // 3600} h"
            ok, why = True, f"{owner}; untouched for {idle / 3600:.0f} h"
        if self.kind == "old" and release_foreign_entries(self.path) is not None:
            return False, f"{why}, but it holds files that are not part of a release: move what you need out of it, then delete it"
        return ok, why

    @classmethod
    def parse(cls, path: Path) -> "WorkDir | None":
        """The work folder ``path`` names, or None when the name is not one of ours."""
        m = _NAME_RE.match(path.name)
        if m is None:
            return None
        pid = m.group("pid")
        return cls(path, m.group("target"), m.group("kind"), m.group("host"), None if pid is None else int(pid))


NOT_WRITABLE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def is_not_writable(exc: OSError) -> bool:
    """True when ``exc`` says a place cannot be written (no permission, read-only file system); the one test
    every "fall back or explain" branch of the package uses, so they all agree on what "read-only" means."""
    return exc.errno in NOT_WRITABLE_ERRNOS


def make_work_dir(target: Path, kind: WorkKind, *, create: bool = True) -> Path:
    """A new, empty work folder beside ``target`` whose name records this process as its owner.

    With ``create=False`` only the (unused) path is returned, for a tool that creates it itself.
    Raises ``PermissionError`` naming the folder and the fix when the folder beside ``target`` is not writable.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    path = target.parent / f".{target.name}.{kind}-{_this_host()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    if create:
        try:
            path.mkdir()
        except OSError as exc:
            if not is_not_writable(exc):
                raise
            raise PermissionError(
                f"cannot write in {target.parent} ({exc.strerror}): it is read-only for this user. "
                f"Fix: choose a location you can write to, or make {target.parent} writable",
            ) from exc
    return path


def find_work_dirs(folder: Path, *, target: str | None = None) -> list[WorkDir]:
    """Work folders directly inside ``folder`` (only those for ``target`` when given), sorted by name."""
    if not folder.is_dir():
        return []
    found = []
    for p in sorted(folder.iterdir()):
        w = WorkDir.parse(p)
        if w is not None and (target is None or w.target == target) and p.is_dir() and not p.is_symlink():
            found.append(w)
    return found


def tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (symbolic links are not followed)."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # removed meanwhile: it no longer counts
                continue
    return total


def remove_tree(path: Path) -> None:
    """Remove a folder we own; a failure is logged with the folder's name (never silently ignored)."""
    errors: list[str] = []

    def onerror(func, p, exc_info) -> None:  # noqa: ANN001 - shutil's callback signature
        errors.append(f"{p}: {exc_info[1]}")

    shutil.rmtree(path, onerror=onerror)
    if errors:
        log.warning(
            "could not remove all of %s (%s); `cemnist cache clean` or deleting it by hand frees the space",
            path, "; ".join(errors[:3]),
        )


def remove_stale_work_dirs(folder: Path, *, target: str | None = None) -> list[WorkDir]:
    """Remove the work folders in ``folder`` that nothing can still be using (see :meth:`WorkDir.removable`).

    Returns those removed. A leftover ``old`` folder (a replaced release) is removed only when it
    still holds nothing but release files, so no user file can be lost even if a name was reused.
    """
    removed = []
    for w in find_work_dirs(folder, target=target):
        if w.removable()[0]:
            remove_tree(w.path)
            removed.append(w)
    return removed


@dataclass(frozen=True)
class CleanItem:
    """One thing ``cemnist cache clean`` found: a folder, its size, whether it goes, and why."""

    path: Path
    bytes: int
    remove: bool
    reason: str


_LEGACY_LOCK_RE = re.compile(r"^_.*_parquet_(?P<config>default-[0-9a-f]{16})_[0-9.]+_[0-9a-f]{64}\.lock$")
_LEGACY_FILE_RE = re.compile(r"^(?:[0-9a-f]{64}(?:_builder\.lock|\.incomplete_info\.lock)|[0-9a-f]{64}/(?:parquet-(?:train|validation|test)(?:-\d{5}-of-\d{5})?\.arrow|dataset_info\.json))$")
_CEMNIST_COLUMNS = frozenset({"image", "mask", "full_mask", "mnist_index", "uid"})


def _legacy_arrow_copy(folder: Path) -> str | None:
    """Why ``arrow/parquet/<folder>`` is not an Arrow copy that an earlier CEMNIST wrote, or None when it is.

    Earlier versions let ``datasets`` cache the release's parquet files under ``arrow/``: the folder is
    ``default-<16 hex>/<version>/<64 hex>/`` holding ``parquet-<split>.arrow`` files and a
    ``dataset_info.json`` whose features are CEMNIST's columns, plus ``datasets``' lock files.
    """
    if not re.fullmatch(r"default-[0-9a-f]{16}", folder.name) or folder.is_symlink():
        return "its name is not one that datasets gave the Arrow copies of earlier CEMNIST versions"
    infos = 0
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = p.relative_to(folder).as_posix()
            version, _, rest = rel.partition("/")
            if p.is_symlink() or not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", version):
                return f"it holds {rel}, which earlier CEMNIST versions never wrote there"
            if p.is_dir() and (not rest or re.fullmatch(r"[0-9a-f]{64}", rest)):
                continue
            if not (p.is_file() and _LEGACY_FILE_RE.match(rest)):
                return f"it holds {rel}, which earlier CEMNIST versions never wrote there"
            if rest.endswith("/dataset_info.json"):
                try:
                    info = read_json_file(p)
                except (OSError, RefusedFileError) as exc:
                    return f"its {rel} cannot be read ({exc})"
                features = info.get("features") if isinstance(info, dict) else None
                if not (isinstance(features, dict) and _CEMNIST_COLUMNS <= set(features)):
                    return f"its {rel} does not describe CEMNIST's columns"
                infos += 1
    return None if infos else "it holds no dataset_info.json describing CEMNIST's columns"


def _legacy_arrow_items(arrow: Path) -> list[CleanItem]:
    """The entries of the legacy ``arrow/`` folder: those provably written by an earlier CEMNIST go, the rest stay."""
    items: list[CleanItem] = []
    parquet = arrow / "parquet"
    ours: set[str] = set()
    for p in sorted(arrow.iterdir()):
        if p == parquet and p.is_dir() and not p.is_symlink():
            for sub in sorted(parquet.iterdir()):
                why = _legacy_arrow_copy(sub) if sub.is_dir() else "it is not a folder of an Arrow copy"
                if why is None:
                    ours.add(sub.name)
                    items.append(CleanItem(sub, tree_size(sub), True, "an Arrow copy written by an earlier CEMNIST "
                                           "version; this version reads the verified parquet and never opens it"))
                else:
                    items.append(CleanItem(sub, tree_size(sub), False, f"not written by CEMNIST: {why}; delete it yourself if it is not needed"))
            continue
        m = _LEGACY_LOCK_RE.match(p.name)
        if m is None or not p.is_file() or p.is_symlink():
            items.append(CleanItem(p, tree_size(p), False, "not written by CEMNIST: earlier versions wrote only "
                                   "parquet/default-*/ and datasets' lock files in arrow/; delete it yourself if it is not needed"))
    for p in sorted(arrow.iterdir()):
        m = _LEGACY_LOCK_RE.match(p.name)
        if m is not None and p.is_file() and not p.is_symlink():
            mine = m.group("config") in ours or not (parquet / m.group("config")).exists()
            items.append(CleanItem(p, 0, mine, "a lock file of an Arrow copy written by an earlier CEMNIST version"
                                   if mine else "the lock file of a folder that is kept"))
    return items


def _cache_items(root: Path) -> list[CleanItem]:
    items: list[CleanItem] = []
    legacy_arrow = root / "arrow"
    if legacy_arrow.is_dir() and not legacy_arrow.is_symlink():
        items += _legacy_arrow_items(legacy_arrow)
    for dirpath, dirnames, _files in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        keep_walking = []
        for name in sorted(dirnames):
            p = Path(dirpath) / name
            w = WorkDir.parse(p)
            if w is not None and not p.is_symlink():
                ok, why = w.removable()
                items.append(CleanItem(p, tree_size(p), ok, why))
            elif depth < 3 and not p.is_symlink() and p != legacy_arrow and not (p / "manifest.json").exists():
                keep_walking.append(name)  # releases/, hub/<repo>/: never into a release or a work folder
        dirnames[:] = keep_walking
    return items


def _remove(item: CleanItem) -> None:
    if item.path.is_dir() and not item.path.is_symlink():
        remove_tree(item.path)
    else:
        item.path.unlink(missing_ok=True)


def clean_work_dirs_in(folder: Path, *, dry_run: bool = False) -> list[CleanItem]:
    """Work folders directly inside ``folder`` (where builds with ``--out folder/NAME`` ran): those of dead owners
    are removed (unless ``dry_run``), the others kept; each with its reason (see :meth:`WorkDir.removable`)."""
    items = []
    for w in find_work_dirs(folder):
        ok, why = w.removable()
        items.append(CleanItem(w.path, tree_size(w.path), ok, why))
    if not dry_run:
        for item in items:
            if item.remove:
                _remove(item)
    return items


def clean_cache(root: Path, *, dry_run: bool = False) -> list[CleanItem]:
    """Find (and unless ``dry_run`` remove) what the cache at ``root`` holds for nothing.

    That is: work folders of killed builds and downloads whose owner process is gone (see
    :meth:`WorkDir.removable`), and the Arrow copies that earlier versions wrote under ``arrow/`` and
    this one never reads; only what matches their layout and content is removed (see
    :func:`_legacy_arrow_copy`), anything else there is listed as kept. Releases, verification records
    and lock files are kept. Returns every item found, removed or kept, with the reason.
    """
    if not root.is_dir():
        return []
    items = _cache_items(root)
    if not dry_run:
        for item in items:
            if item.remove:
                _remove(item)
        arrow = root / "arrow"
        for empty in (arrow / "parquet", arrow):  # emptied by the removals above: nothing of the user's is in them
            if empty.is_dir() and not empty.is_symlink() and not any(empty.iterdir()):
                empty.rmdir()
    return items


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not os.path.lexists(p):
        if p.parent == p:
            break
        p = p.parent
    return p


def check_folder_location(path: Path, *, what: str, fix: str) -> None:
    """Raise :class:`CemnistPathError` unless ``path`` is, or can become, a folder.

    ``what`` names the path for the message (e.g. ``"--out"``, ``"$CEMNIST_CACHE"``) and ``fix``
    says what to do instead. A path that exists as a file, or lies below a file, is refused.
    """
    anc = _existing_ancestor(path)
    if os.path.lexists(anc) and not anc.is_dir():
        where = "is a file, not a folder" if anc == path else f"cannot be a folder: {anc} is a file"
        raise CemnistPathError(f"{what} {path} {where}. Fix: {fix}")


def release_foreign_entries(folder: Path) -> list[str] | None:
    """Entries of ``folder`` that are not part of a CEMNIST release (relative paths, sorted).

    An empty folder gives ``[]``. Returns ``None`` when ``folder`` holds a release and nothing else;
    a folder without a ``manifest.json`` that is not empty lists all its entries.
    """
    entries = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    if not entries:
        return []
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file() or manifest_path.is_symlink():
        return [e + "/" if (folder / e).is_dir() else e for e in entries if "/" not in e]
    listed: set[str] | None = None
    try:
        manifest = read_json_file(manifest_path)
    except (OSError, RefusedFileError):
        manifest = None  # a damaged release: its data files are recognised by their layout alone
    if isinstance(manifest, dict):
        if manifest.get("name") != "cemnist" or not str(manifest.get("format", "")).startswith("cemnist-manifest/"):
            return ["manifest.json (not a CEMNIST manifest)"]
        if isinstance(manifest.get("files"), dict):
            listed = set(manifest["files"])
    foreign = []
    for rel in entries:
        p = folder / rel
        if p.is_symlink():
            foreign.append(f"{rel} (symbolic link)")
        elif p.is_dir():
            if rel not in _RELEASE_DIRS and not rel.startswith(("data/", ".cache/huggingface")):
                foreign.append(rel + "/")
        elif rel in _RELEASE_FILES or rel.startswith(".cache/huggingface/"):
            continue
        elif rel.startswith("data/") and rel.endswith(".parquet") and (listed is None or rel in listed):
            continue
        else:
            foreign.append(rel)
    return foreign or None


def check_release_target(out: Path, *, overwrite: bool) -> None:
    """Raise unless a release may be written at ``out`` (missing, or replaceable with ``overwrite``).

    ``overwrite`` replaces only an empty folder or one holding a CEMNIST release and nothing else;
    a file, a symbolic link or any other folder is refused (:class:`CemnistPathError`) with the
    reason, so no user data can be deleted or hidden. Without ``overwrite`` an existing path raises
    ``FileExistsError``.
    """
    fix_other = "choose a new folder for --out (out_dir=), e.g. a subfolder that does not exist yet."
    check_work_dir_name(out, what="--out (out_dir)")
    if not os.path.lexists(out):
        check_folder_location(out, what="--out (out_dir)", fix=fix_other)
        return
    if out.is_symlink():
        raise CemnistPathError(f"{out} is a symbolic link; it is never replaced. Fix: pass the folder it points to, or {fix_other}")
    if not out.is_dir():
        raise CemnistPathError(
            f"{out} is a file, not a release folder; --overwrite (overwrite=True) never replaces a file. Fix: {fix_other}"
        )
    foreign = release_foreign_entries(out)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" (and {len(foreign) - 5} more)" if len(foreign) > 5 else "")
        raise CemnistPathError(
            f"{out} holds what is not part of a CEMNIST release: {shown}. --overwrite (overwrite=True) replaces only "
            f"an empty folder or a folder holding a CEMNIST release (its manifest.json) and nothing else. Fix: {fix_other}"
        )
    if not overwrite and foreign is None:
        raise FileExistsError(f"{out} already holds a release; pass overwrite=True (CLI: --overwrite) to replace it")


NAME_MAX = 255
"""Longest file name (bytes) that common Linux and macOS file systems allow."""
_WORK_SUFFIX_BYTES = len(".") + len(".download-") + 64 + len("-") + 10 + len("-") + 12
"""The most that the name of a work folder adds to its target's name (see :func:`make_work_dir`)."""


def check_work_dir_name(target: Path, *, what: str) -> None:
    """Raise :class:`CemnistPathError` unless ``target`` can be written with a work folder beside it: its path
    must be valid UTF-8 (the parquet writer needs it) and its name short enough for the work folder's name."""
    try:
        str(target).encode("utf-8")
    except UnicodeEncodeError:
        raise CemnistPathError(
            f"{what} {os.fsencode(target)!r} is not a valid UTF-8 path, which the parquet writer needs. "
            "Fix: choose a name (and folders) in UTF-8"
        ) from None
    size = len(target.name.encode("utf-8"))
    limit = NAME_MAX - _WORK_SUFFIX_BYTES
    if size > limit:
        raise CemnistPathError(
            f"{what} {target} has a name of {size} bytes; it is written through a work folder beside it whose name adds "
            f"up to {_WORK_SUFFIX_BYTES} bytes, and a file name may have {NAME_MAX}. Fix: choose a name of at most "
            f"{limit} bytes"
        )


def resolve_path(path: str | os.PathLike[str], *, what: str, fix: str) -> Path:
    """``Path(path).expanduser().resolve()``, with a symbolic-link loop reported as :class:`CemnistPathError`
    naming ``what`` (e.g. ``"--out"``, ``"$CEMNIST_CACHE"``), the path and ``fix``."""
    p = Path(path).expanduser()
    try:
        return p.resolve()
    except RuntimeError as exc:  # Python < 3.13: "Symlink loop from ..."
        raise CemnistPathError(f"{what} {p} is a symbolic link loop ({exc}). Fix: {fix}") from None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise CemnistPathError(f"{what} {p} is a symbolic link loop ({exc.strerror}). Fix: {fix}") from None


DISK_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None)) if e is not None)


class DiskFullError(OSError):
    """Writing failed because the disk is full, a quota is spent or a file hit the size limit; the message
    names the target and the fix (a runtime failure: exit status 1)."""


def disk_full_error(exc: BaseException, *, target: Path, doing: str) -> DiskFullError | None:
    """A one-line :class:`DiskFullError` for ``exc`` when it says "no space" / "file too large", else None.

    pyarrow raises ``OSError`` with the ``errno`` set but no file name; ``doing`` names what was written.
    """
    if not isinstance(exc, OSError) or exc.errno not in DISK_FULL_ERRNOS:
        return None
    why = {errno.ENOSPC: "the disk is full", errno.EFBIG: "a file reached the file size limit (`ulimit -f`) or the "
           "largest file the file system allows"}.get(exc.errno, "the disk quota is used up")
    err = DiskFullError(
        f"{doing} failed: {why} ({os.strerror(exc.errno)}) on the file system of {target.parent}; nothing was left "
        f"behind. Fix: free space there (or raise the limit), or choose a location on another disk"
    )
    err.errno = exc.errno
    return err


class LockBusyError(RuntimeError):
    """:func:`path_lock` with ``blocking=False`` found the lock held; ``holder`` is what its holder wrote into the
    lock file (``""`` when nothing was written yet, or where the platform's lock keeps no text)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is locked by another process ({holder or 'holder unknown'})")
        self.path = path
        self.holder = holder


@contextmanager
def path_lock(path: Path, *, blocking: bool = True, holder: str | None = None) -> Iterator[Path]:
    """Hold an exclusive lock on the file ``path`` (created if needed) and delete it on release; yields ``path``.

    POSIX ``flock`` (the kernel drops it when the holder dies, even on ``kill -9``); after taking the lock the
    file is checked to still be the one at ``path`` (a holder deletes it before it lets go), so deleting it
    cannot let two processes in at once. ``blocking=False``: a held lock raises :class:`LockBusyError` at once
    instead of waiting. ``holder``: a line written into the lock file while it is held (e.g. the PID), which a
    refused process reads into its error. Where ``fcntl`` does not exist, :class:`filelock.FileLock` is used,
    the file stays and holds no text.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX
        from filelock import FileLock, Timeout

        lock = FileLock(str(path))
        try:
            lock.acquire(timeout=-1 if blocking else 0)
        except Timeout:
            raise LockBusyError(path, "") from None
        try:
            yield path
        finally:
            lock.release()
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                raise LockBusyError(path, os.pread(fd, 200, 0).decode("utf-8", "replace").strip()) from None
            held = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if not stat.S_ISREG(held.st_mode):
            os.close(fd)
            raise CemnistPathError(f"the lock file {path} is not a regular file. Fix: move it out of the way")
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)  # the holder before us deleted it: lock the new one
    try:
        if holder is not None:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{holder}\n".encode(), 0)
        yield path
    finally:
        try:
            os.unlink(path)
        except OSError as exc:  # gone already, or a folder we may not change: the file stays, the lock is still sound
            if not (isinstance(exc, FileNotFoundError) or is_not_writable(exc)):
                raise
            if not isinstance(exc, FileNotFoundError):
                log.debug("could not delete the lock file %s (%s); it stays", path, exc.strerror)
        finally:
            os.close(fd)  # releases the lock

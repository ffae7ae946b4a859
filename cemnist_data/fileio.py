"""Atomic file writes and bounded reads shared by every part of the package (dataset, baselines, pictures)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "file_sha256", "read_regular_file",
           "parse_json", "read_json_file", "RefusedFileError", "MAX_JSON_BYTES"]

MAX_JSON_BYTES = 16 * 2**20
"""Largest JSON file (manifest, ``id2label.json``, verification record) that is read: 16 MiB (the 1.0.0
manifest is 14 kB)."""


class RefusedFileError(ValueError):
    """A file that is not read: not a regular file (a FIFO, a device such as /dev/zero, a folder), larger
    than its cap, or JSON that cannot be parsed. The message names the file and why."""


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one rename.

    Whatever the body writes to the temporary path appears at ``path`` complete or not at all: an
    exception (or interrupt) removes the temporary file. The file gets the usual permissions
    (0666 minus the umask), whatever the writer created it with.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(path: str | os.PathLike[str], *, max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path`` (a symbolic link to one is followed), at most ``max_bytes``.

    A FIFO, a device (``/dev/zero``), a socket or a folder is refused without reading from it, and so is a
    file larger than ``max_bytes`` (also one that grows past it while it is read): :class:`RefusedFileError`
    naming the file. ``FileNotFoundError`` and other ``OSError`` pass through.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # O_NONBLOCK: opening a FIFO does not wait
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RefusedFileError(f"{os.fsdecode(path)} is {_kind(st.st_mode)}, not a regular file, so it is not read. "
                                   "Fix: replace it with the file it should be")
        if st.st_size > max_bytes:
            raise RefusedFileError(f"{os.fsdecode(path)} is {st.st_size:,} bytes, more than the {max_bytes:,} bytes "
                                   "such a file may have, so it is not read. Fix: replace it with the file it should be")
        chunks, total = [], 0
        while True:
            block = os.read(fd, min(1 << 24, max_bytes + 1 - total))
            if not block:
                break
            chunks.append(block)
            total += len(block)
            if total > max_bytes:
                raise RefusedFileError(f"{os.fsdecode(path)} grew past {max_bytes:,} bytes while it was read, so it "
                                       "is not read. Fix: replace it with the file it should be")
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_json(data: bytes, where: str | os.PathLike[str]) -> object:
    """``data`` (UTF-8 JSON) parsed; :class:`RefusedFileError` naming ``where`` for invalid UTF-8 or JSON, and for
    JSON nested too deeply for Python's parser (which otherwise raises a bare ``RecursionError``)."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RefusedFileError(f"{os.fsdecode(where)} is not valid JSON ({exc})") from exc
    except RecursionError:
        raise RefusedFileError(f"{os.fsdecode(where)} is not valid JSON for CEMNIST: it is nested too deeply to "
                               "parse") from None


def read_json_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_JSON_BYTES) -> object:
    """A JSON file read with :func:`read_regular_file` and parsed with :func:`parse_json`."""
    return parse_json(read_regular_file(path, max_bytes=max_bytes), path)

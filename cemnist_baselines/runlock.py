"""One writer per run: a run holds an exclusive lock on its (method, setting, mode, seed) stem in a results
folder for its whole life, so that two runs of one stem (e.g. with different configs) can never mix their
checkpoints or lose a result.

The lock is ``{out}/{stem}.lock``, locked with ``flock`` (released by the kernel when the holder exits, even on
``kill -9``) and holding the holder's PID and host; it is removed when the run ends. A second run of the stem is
refused at once with :class:`RunLockedError` naming the lock, the holder and the fix. Runs of different stems
(``--jobs`` workers) never share a lock; the shared task-0 lock (``checkpoints/_shared/*.lock``) is always taken
after this one, so there is no lock-order cycle.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: the filelock package (no PID in the message)
    fcntl = None  # type: ignore[assignment]


class RunLockedError(RuntimeError):
    """Another process is writing the same run (method, setting, mode, seed) into the same folder."""


def lock_path(out: str | os.PathLike[str], stem: str) -> Path:
    """The lock file of run ``stem`` in results folder ``out``."""
    return Path(out) / f"{stem}.lock"


def _refusal(path: Path, stem: str, holder: str) -> RunLockedError:
    return RunLockedError(
        f"{path}: run {stem} is being written into {path.parent} by another process ({holder}); two runs of one "
        f"method and seed must not share a folder: wait for that run to end, or use another --out folder")


@contextmanager
def run_lock(out: str | os.PathLike[str], stem: str) -> Iterator[Path]:
    """Hold the lock of run ``stem`` in ``out`` (created if needed) for the ``with`` body; refuse at once with
    :class:`RunLockedError` when another process holds it."""
    path = lock_path(out, stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        from filelock import FileLock, Timeout

        lock = FileLock(str(path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise _refusal(path, stem, "process unknown") from None
        try:
            yield path
        finally:
            lock.release()
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise _refusal(path, stem, f"PID {holder}" if holder else "PID not written yet") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            st = os.stat(path)
            same = (st.st_ino, st.st_dev) == (os.fstat(fd).st_ino, os.fstat(fd).st_dev)
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed the file after we opened it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield path
    finally:
        try:
            os.unlink(path)  # while still locked: a waiting opener sees another inode and retries
        except FileNotFoundError:
            pass
        os.close(fd)

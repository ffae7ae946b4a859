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
from contextlib import ExitStack, contextmanager
from pathlib import Path

from cemnist_data.workdirs import LockBusyError, path_lock


class RunLockedError(RuntimeError):
    """Another process is writing the same run (method, setting, mode, seed) into the same folder."""


def lock_path(out: str | os.PathLike[str], stem: str) -> Path:
    """The lock file of run ``stem`` in results folder ``out``."""
    return Path(out) / f"{stem}.lock"


@contextmanager
def run_lock(out: str | os.PathLike[str], stem: str) -> Iterator[Path]:
    """Hold the lock of run ``stem`` in ``out`` (created if needed) for the ``with`` body, with this process's PID
    and host in it (:func:`cemnist_data.workdirs.path_lock`, not waiting); refuse at once with
    :class:`RunLockedError` when another process holds it."""
    path = lock_path(out, stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        try:
            held = stack.enter_context(path_lock(path, blocking=False,
                                                 holder=f"{os.getpid()} on {socket.gethostname()}"))
        except LockBusyError as e:
            who = f"PID {e.holder}" if e.holder else "PID not written yet"
            raise RunLockedError(
                f"{path}: run {stem} is being written into {path.parent} by another process ({who}); two runs of "
                f"one method and seed must not share a folder: wait for that run to end, or use another --out folder"
            ) from None
        yield held

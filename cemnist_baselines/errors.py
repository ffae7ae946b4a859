"""Exceptions the CLI maps to exit statuses (kept free of heavy imports: the CLI imports this at start)."""
from __future__ import annotations


class WriteError(OSError):
    """A baselines file could not be written (disk full, file-size limit, quota): the message names the path
    and the fix. The CLI reports it in one line with exit status 1."""

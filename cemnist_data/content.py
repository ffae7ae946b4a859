"""Decoded-content hashing: the identity of a split independent of how its parquet bytes are encoded.

A split's content hash is the SHA-256 of the per-column SHA-256s, each taken over a canonical byte
stream of the decoded column in row order:

* ``image``, ``mask``, ``full_mask``: raw uint8 pixels, ``[N, 60, 60]`` C order;
* ``task``: int64 little-endian;
* ``digits``, ``mnist_index``, ``top``, ``left``: ``[N, 4]`` int64 little-endian, unused slots -1;
* ``mnist_split``, ``uid``: UTF-8 strings, each followed by a NUL byte.

Hashes are updated chunk by chunk, so a hash does not depend on chunk or row-group sizes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from .png import decode_png_column

__all__ = ["COLUMNS", "ContentHasher", "canonical_from_table", "pad_lists"]

IMAGE_COLUMNS = ("image", "mask", "full_mask")
LIST_COLUMNS = ("digits", "mnist_index", "top", "left")
COLUMNS = IMAGE_COLUMNS + ("task",) + LIST_COLUMNS + ("mnist_split", "uid")
MAX_SLOTS = 4


class ContentHasher:
    """Incremental content hash of one split (see module docstring)."""

    def __init__(self) -> None:
        self._h = {c: hashlib.sha256() for c in COLUMNS}
        self.num_rows = 0

    def update(self, cols: dict[str, np.ndarray | Sequence[str]]) -> None:
        """Add the next rows; ``cols`` maps every name in :data:`COLUMNS` to its canonical array."""
        n = len(cols["task"])
        for c in COLUMNS:
            v = cols[c]
            if c in ("mnist_split", "uid"):
                if len(v) != n:
                    raise ValueError(f"column {c} has {len(v)} rows, expected {n}")
                self._h[c].update(b"".join(s.encode("utf-8") + b"\0" for s in v))
                continue
            a = np.asarray(v)
            if c in IMAGE_COLUMNS:
                a = np.ascontiguousarray(a, dtype=np.uint8)
            else:
                a = np.ascontiguousarray(a, dtype="<i8")
            if a.shape[0] != n:
                raise ValueError(f"column {c} has {a.shape[0]} rows, expected {n}")
            self._h[c].update(a.tobytes())
        self.num_rows += n

    def column_digests(self) -> dict[str, str]:
        return {c: self._h[c].hexdigest() for c in COLUMNS}

    def hexdigest(self) -> str:
        top = hashlib.sha256()
        for c, d in self.column_digests().items():
            top.update(f"{c}:{d}\n".encode())
        return top.hexdigest()


def pad_lists(column: pa.Array | pa.ChunkedArray, *, width: int = MAX_SLOTS) -> np.ndarray:
    """A list<int> Arrow column as an int64 ``[N, width]`` array padded with -1."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    offsets = np.asarray(column.offsets).astype(np.int64)
    values = np.asarray(column.values.to_numpy(zero_copy_only=False), dtype=np.int64)
    lengths = np.diff(offsets)
    if lengths.size and lengths.max() > width:
        raise ValueError(f"a row has {int(lengths.max())} digits; at most {width} are allowed")
    out = np.full((len(lengths), width), -1, dtype=np.int64)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    slots = np.arange(len(rows)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    out[rows, slots] = values[offsets[0] : offsets[-1]]
    return out


def canonical_from_table(table: pa.Table, *, height: int = 60, width: int = 60) -> dict[str, object]:
    """Decode a release table into the canonical columns hashed by :class:`ContentHasher`."""
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"table lacks columns {missing}; has {table.column_names}")
    cols: dict[str, object] = {}
    for c in IMAGE_COLUMNS:
        cols[c] = decode_png_column(table.column(c), height=height, width=width, name=c)
    cols["task"] = table.column("task").to_numpy().astype(np.int64)
    for c in LIST_COLUMNS:
        cols[c] = pad_lists(table.column(c))
    cols["mnist_split"] = table.column("mnist_split").to_pylist()
    cols["uid"] = table.column("uid").to_pylist()
    return cols

"""Fast PNG encoding and decoding of many small 8-bit images (grayscale, or palette for label masks).

The release stores every image as a standard PNG (8-bit grayscale, one IDAT chunk, filter type 0 on
every row) and every mask as the same with colour type 3 (palette) and the label palette of
:mod:`cemnist_data.labels` in a ``PLTE`` chunk: the pixel bytes are the label ids either way, so a
viewer shows colours while a decoder that keeps the palette indices (Pillow mode ``"P"``) reads ids.
Any PNG reader opens them. Writing that canonical form ourselves lets us
(1) encode with plain ``zlib`` (several times faster than a general encoder choosing filters per row)
spread over threads, since ``zlib`` releases the GIL, and (2) decode whole columns at once: one
``zlib.decompress`` per image and a single NumPy reshape for the column. PNGs that are not in the
canonical form (e.g. re-encoded by another tool) are decoded with Pillow instead.
"""

from __future__ import annotations

import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import pyarrow as pa
from PIL import Image

__all__ = ["encode_png_batch", "decode_png_column", "PNG_COMPRESS_LEVEL"]

PNG_COMPRESS_LEVEL = 3  # zlib level: 1.7x faster than 6 for 4% larger files (bench/bench_build.py)
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IEND = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
_BLOCK = 512  # images per thread task


def _chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def _ihdr(height: int, width: int, colour_type: int = 0) -> bytes:
    # bit depth 8, colour type 0 (grayscale) or 3 (palette), compression 0, filter 0, no interlace
    return _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))


def _check_palette(palette: bytes) -> int:
    if not isinstance(palette, (bytes, bytearray)) or len(palette) % 3 or not 3 <= len(palette) <= 768:
        raise ValueError(f"palette must be 1..256 RGB triplets (3..768 bytes, a multiple of 3), got {len(palette)} bytes")
    return len(palette) // 3


@lru_cache(maxsize=16)
def _canonical_prefixes(height: int, width: int) -> tuple[bytes, ...]:
    """Bytes before the IDAT chunk in the canonical forms: grayscale, and palette with the label palette."""
    from .labels import mask_palette_bytes

    return (
        _SIGNATURE + _ihdr(height, width),
        _SIGNATURE + _ihdr(height, width, 3) + _chunk(b"PLTE", mask_palette_bytes()),
    )


def _encode_block(raw: np.ndarray, head: bytes, level: int) -> list[bytes]:
    out = []
    for row in raw:
        data = zlib.compress(row.tobytes(), level)
        out.append(head + _chunk(b"IDAT", data) + _IEND)
    return out


def encode_png_batch(
    images: np.ndarray,
    *,
    level: int = PNG_COMPRESS_LEVEL,
    executor: ThreadPoolExecutor | None = None,
    palette: bytes | None = None,
) -> list[bytes]:
    """Encode uint8 ``[N, H, W]`` arrays as canonical PNG files (bytes, in order).

    Grayscale by default; with ``palette`` (RGB triplets, e.g. :func:`cemnist_data.labels.mask_palette_bytes`)
    a palette PNG whose pixel values are indices into it (every value must be a palette index).
    """
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"expected a uint8 array [N, H, W], got {images.dtype} {images.shape}")
    n, h, w = images.shape
    if palette is not None:
        entries = _check_palette(palette)
        top = int(images.max()) if images.size else 0
        if top >= entries:
            raise ValueError(f"value {top} has no palette entry: a palette of {entries} colours allows values 0..{entries - 1}")
    raw = np.zeros((n, h, w + 1), dtype=np.uint8)  # a 0 filter byte before every row
    raw[:, :, 1:] = images
    head = _SIGNATURE + _ihdr(h, w) if palette is None else _SIGNATURE + _ihdr(h, w, 3) + _chunk(b"PLTE", bytes(palette))
    blocks = [raw[s : s + _BLOCK] for s in range(0, n, _BLOCK)]
    if executor is None or len(blocks) == 1:
        parts = [_encode_block(b, head, level) for b in blocks]
    else:
        parts = list(executor.map(_encode_block, blocks, [head] * len(blocks), [level] * len(blocks)))
    return [png for part in parts for png in part]


def _binary_parts(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The offsets and the data buffer of a (large_)binary Arrow array, without copying rows."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_struct(column.type):  # the datasets Image feature: struct<bytes, path>
        column = column.field("bytes")
    if column.null_count:
        raise ValueError("image column has missing (null) entries")
    if pa.types.is_large_binary(column.type):
        off_dtype = np.int64
    elif pa.types.is_binary(column.type):
        off_dtype = np.int32
    else:
        raise ValueError(f"expected a binary column of PNG bytes, got {column.type}")
    _, off_buf, data_buf = column.buffers()
    offsets = np.frombuffer(off_buf, dtype=off_dtype)[column.offset : column.offset + len(column) + 1].astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return offsets, data


def _inflate_bounded(payload: memoryview, expected: int, *, row: int, name: str) -> bytes:
    """The zlib stream ``payload`` inflated, which must give exactly ``expected`` bytes.

    Never produces more than ``expected`` bytes, so a crafted stream (a "zip bomb" that would
    expand to gigabytes) costs no more memory than a genuine image. Raises ``ValueError`` naming
    the row otherwise.
    """
    d = zlib.decompressobj()
    try:
        raw = d.decompress(payload, expected)
    except zlib.error as exc:
        raise ValueError(f"row {row}: the PNG pixel data is not a valid zlib stream ({exc}; {name} column); the file is corrupted") from exc
    if len(raw) != expected or not d.eof:
        got = f"more than {expected}" if len(raw) == expected else str(len(raw))
        raise ValueError(
            f"row {row}: the PNG pixel data inflates to {got} bytes, but its header promises exactly {expected} "
            f"({name} column); the file is corrupted or crafted (decoding stopped at {expected} bytes)"
        )
    return raw


def decode_png_column(
    column: pa.Array | pa.ChunkedArray, *, height: int = 60, width: int = 60, name: str = "image"
) -> np.ndarray:
    """Decode a column of PNG bytes (or datasets Image structs) into uint8 ``[N, height, width]``.

    Grayscale PNGs give their pixel values, palette PNGs their palette indices (the label ids of a
    mask). Canonical PNGs (as written by :func:`encode_png_batch`, grayscale or with the label
    palette) are validated by header and inflated with one bounded ``zlib`` call each; any other PNG
    goes through Pillow. Raises ``ValueError`` naming the row (and the column ``name``) when an
    image has another size or mode, or when its pixel data does not inflate to exactly the size its
    header promises: decompression stops there, so a crafted PNG cannot expand to gigabytes.
    """
    offsets, data = _binary_parts(column)
    n = len(offsets) - 1
    out = np.empty((n, height, width), dtype=np.uint8)
    if n == 0:
        return out
    starts, sizes = offsets[:-1], np.diff(offsets)
    canonical = np.zeros(n, dtype=bool)
    data_start = np.zeros(n, dtype=np.int64)  # first byte of the IDAT payload
    data_len = np.zeros(n, dtype=np.int64)
    weights = np.array([1 << 24, 1 << 16, 1 << 8, 1], dtype=np.int64)
    for prefix in _canonical_prefixes(height, width):
        k = len(prefix)
        head = np.frombuffer(prefix + b"\0\0\0\0IDAT", dtype=np.uint8)
        cand = np.flatnonzero(~canonical & (sizes >= head.size + 4 + len(_IEND)))
        if not cand.size:
            continue
        hdr = data[starts[cand, None] + np.arange(head.size)[None, :]]
        same = (hdr[:, :k] == head[:k]).all(axis=1) & (hdr[:, k + 4 : k + 8] == head[k + 4 : k + 8]).all(axis=1)
        length = hdr[:, k : k + 4].astype(np.int64) @ weights
        same &= length + k + 8 + 4 + len(_IEND) == sizes[cand]  # exactly one IDAT, then IEND
        hit = cand[same]
        canonical[hit] = True
        data_start[hit] = starts[hit] + k + 8
        data_len[hit] = length[same]
    idx = np.flatnonzero(canonical)
    buf = memoryview(data)
    rowlen = width + 1
    if idx.size:
        expected = height * rowlen
        raw = b"".join([
            _inflate_bounded(buf[s : s + ln], expected, row=i, name=name)
            for i, s, ln in zip(idx.tolist(), data_start[idx].tolist(), data_len[idx].tolist())
        ])
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(idx.size, height, rowlen)
        unfiltered = (rows[:, :, 0] == 0).all(axis=1)
        out[idx[unfiltered]] = rows[unfiltered, :, 1:]
        canonical[idx[~unfiltered]] = False
    for i in np.flatnonzero(~canonical).tolist():
        with Image.open(io.BytesIO(buf[starts[i] : starts[i] + sizes[i]])) as im:
            if im.mode not in ("L", "P") or im.size != (width, height):
                raise ValueError(f"row {i}: expected a {width}x{height} 8-bit grayscale or palette image, got mode {im.mode} size {im.size} ({name} column)")
            out[i] = np.asarray(im)
    return out

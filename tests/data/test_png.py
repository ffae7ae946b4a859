"""The canonical PNG codec: round trips, other encoders' PNGs, and malformed input."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from cemnist_data.png import decode_png_column, encode_png_batch


def _images(n: int = 7) -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.random((n, 60, 60)) < 0.3).astype(np.uint8) * rng.integers(0, 256, (n, 60, 60), dtype=np.uint8)


def _pil_png(a: np.ndarray, mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).convert(mode).save(buf, format="PNG", optimize=True)  # adaptive row filters
    return buf.getvalue()


def _chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def test_round_trip_and_any_png_reader_opens_ours() -> None:
    a = _images()
    pngs = encode_png_batch(a)
    for i, p in enumerate(pngs):
        assert (np.asarray(Image.open(io.BytesIO(p))) == a[i]).all()
    assert (decode_png_column(pa.array(pngs, type=pa.binary())) == a).all()
    assert (decode_png_column(pa.array(pngs, type=pa.large_binary())) == a).all()


def test_pngs_from_other_encoders_decode_through_pillow() -> None:
    a = _images()
    mixed = [_pil_png(a[i]) if i % 2 else p for i, p in enumerate(encode_png_batch(a))]
    assert (decode_png_column(pa.array(mixed)) == a).all()


def test_pixel_data_split_over_two_idat_chunks() -> None:
    a = _images(1)[0]
    raw = zlib.compress(np.concatenate([np.zeros((60, 1), np.uint8), a], axis=1).tobytes())
    canonical = encode_png_batch(a[None])[0]
    head = canonical[: 8 + 25]  # signature + IHDR
    split = head + _chunk(b"IDAT", raw[:100]) + _chunk(b"IDAT", raw[100:]) + _chunk(b"IEND", b"")
    assert (np.asarray(Image.open(io.BytesIO(split))) == a).all()  # a valid PNG ...
    assert (decode_png_column(pa.array([split]))[0] == a).all()  # ... that we decode too


def test_wrong_size_or_mode_is_an_error() -> None:
    small = _pil_png(np.zeros((30, 30), np.uint8))
    with pytest.raises(ValueError, match="row 0: expected a 60x60 8-bit grayscale or palette image"):
        decode_png_column(pa.array([small]))
    rgb = _pil_png(np.zeros((60, 60), np.uint8), mode="RGB")
    with pytest.raises(ValueError, match="got mode RGB"):
        decode_png_column(pa.array([rgb]))
    with pytest.raises(ValueError, match="uint8 array"):
        encode_png_batch(np.zeros((2, 60, 60), np.int16))


def test_empty_and_null_columns() -> None:
    assert decode_png_column(pa.array([], type=pa.binary())).shape == (0, 60, 60)
    with pytest.raises(ValueError, match="missing"):
        decode_png_column(pa.array([None], type=pa.binary()))


def test_rows_with_png_filters_are_unfiltered_correctly() -> None:
    a = _images(1)[0]
    sub = np.diff(a.astype(np.int16), axis=1, prepend=0).astype(np.uint8)  # filter type 1 (Sub)
    rows = np.concatenate([np.ones((60, 1), np.uint8), sub], axis=1)
    head = encode_png_batch(a[None])[0][: 8 + 25]
    png = head + _chunk(b"IDAT", zlib.compress(rows.tobytes())) + _chunk(b"IEND", b"")
    assert (np.asarray(Image.open(io.BytesIO(png))) == a).all()
    assert (decode_png_column(pa.array([png]))[0] == a).all()


def test_palette_masks_decode_to_label_ids_everywhere() -> None:
    """Palette PNG masks: Pillow opens them as mode P with the label ids as pixel values, the column
    decoder reads the same ids (fast path, and Pillow path for a re-encoded copy), and a value
    without a palette entry is refused at encoding."""
    from cemnist_data.labels import MASK_PALETTE_RGB, mask_palette_bytes

    rng = np.random.default_rng(3)
    masks = rng.integers(0, 11, (6, 60, 60), dtype=np.uint8)
    pngs = encode_png_batch(masks, palette=mask_palette_bytes())
    with Image.open(io.BytesIO(pngs[0])) as im:
        assert im.mode == "P" and (np.asarray(im) == masks[0]).all()
        assert im.getpalette()[: 3 * len(MASK_PALETTE_RGB)] == [v for rgb in MASK_PALETTE_RGB for v in rgb]
        rgb = np.asarray(im.convert("RGB"))
    assert (rgb[masks[0] == 3] == MASK_PALETTE_RGB[3]).all()  # a viewer shows digit 2 in its colour
    assert (decode_png_column(pa.array(pngs)) == masks).all()
    with Image.open(io.BytesIO(pngs[1])) as im:  # another encoder, another palette chunk: Pillow path
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
    mixed = decode_png_column(pa.array([buf.getvalue(), pngs[2], encode_png_batch(masks[3:4])[0]]))
    assert (mixed == masks[1:4]).all()
    with pytest.raises(ValueError, match="value 255 has no palette entry: a palette of 11 colours allows values 0..10"):
        encode_png_batch(np.full((1, 60, 60), 255, np.uint8), palette=mask_palette_bytes())
    with pytest.raises(ValueError, match="palette must be 1..256 RGB triplets"):
        encode_png_batch(masks, palette=b"\0\0")

"""The label space of CEMNIST masks: ids, names, and the palette that palette-PNG masks carry.

``0`` = background, ``d + 1`` = digit ``d`` (ids 1..10), ``255`` = ignore (reserved, never in the
released masks, and therefore not in ``id2label``). Masks are stored as 8-bit *palette* PNGs whose
pixel values are these ids, so any PNG viewer (the Hub's dataset viewer included) shows the digits in
colour while a program reads the ids (Pillow mode ``"P"``; ``numpy.asarray(image)`` gives the ids).

Colours: black background; digits 0-6 take the seven non-black Okabe-Ito colours, digits 7-9 three
colours of Paul Tol's "muted" scheme (the same colours as :mod:`cemnist_data.viz.palette`).
"""

from __future__ import annotations

import json

__all__ = [
    "BACKGROUND",
    "IGNORE",
    "NUM_LABELS",
    "ID2LABEL",
    "LABEL2ID",
    "MASK_PALETTE_RGB",
    "mask_palette_bytes",
    "id2label_json",
]

BACKGROUND = 0
IGNORE = 255
NUM_LABELS = 11  # background + 10 digits

ID2LABEL: dict[int, str] = {0: "background", **{d + 1: f"digit_{d}" for d in range(10)}}
"""Label id -> name, as Hugging Face segmentation models take it (``id2label``)."""
LABEL2ID: dict[str, int] = {name: i for i, name in ID2LABEL.items()}
"""Name -> label id (``label2id``)."""

MASK_PALETTE_RGB: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),  # 0 background: black
    (0xE6, 0x9F, 0x00),  # digit 0 orange (Okabe-Ito)
    (0x56, 0xB4, 0xE9),  # digit 1 sky blue (Okabe-Ito)
    (0x00, 0x9E, 0x73),  # digit 2 bluish green (Okabe-Ito)
    (0xF0, 0xE4, 0x42),  # digit 3 yellow (Okabe-Ito)
    (0x00, 0x72, 0xB2),  # digit 4 blue (Okabe-Ito)
    (0xD5, 0x5E, 0x00),  # digit 5 vermillion (Okabe-Ito)
    (0xCC, 0x79, 0xA7),  # digit 6 reddish purple (Okabe-Ito)
    (0x33, 0x22, 0x88),  # digit 7 indigo (Tol muted)
    (0x99, 0x99, 0x33),  # digit 8 olive (Tol muted)
    (0x88, 0x22, 0x55),  # digit 9 wine (Tol muted)
)
"""RGB colour of each label id 0..10: the ``PLTE`` chunk of every mask PNG."""


def mask_palette_bytes() -> bytes:
    """The ``PLTE`` payload of mask PNGs: 11 RGB triplets (33 bytes), one per label id."""
    return bytes(v for rgb in MASK_PALETTE_RGB for v in rgb)


def id2label_json() -> str:
    """Text of ``id2label.json`` in a release folder (string keys, as ``transformers`` configs use)."""
    return json.dumps({str(i): name for i, name in ID2LABEL.items()}, indent=2) + "\n"

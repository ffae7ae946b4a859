"""Fixed, colour-blind-aware palette for CEMNIST labels, used by every picture.

Label space (docs/INTERFACES.md): ``0`` = background (drawn transparent, i.e. the grey image shows),
``d + 1`` = digit ``d``, ``255`` = ignore (drawn as a black/white stripe pattern, never blended).

Digit colours: the seven non-black Okabe–Ito colours (Okabe & Ito 2008) for digits 0–6, and three
colours of Paul Tol's "muted" scheme (indigo, olive, wine) for digits 7–9. Ten categorical colours
can never all be distinguished by every kind of colour vision; the legend and the per-panel labels
always accompany the colours.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ..labels import BACKGROUND, IGNORE, MASK_PALETTE_RGB

DIGIT_COLORS_HEX: tuple[str, ...] = tuple("#%02X%02X%02X" % rgb for rgb in MASK_PALETTE_RGB[1:])
"""The digits' colours (digit 0..9), as :data:`cemnist_data.labels.MASK_PALETTE_RGB` defines them."""
# The ignore label is drawn as diagonal stripes of these two colours (2-pixel stripes).
IGNORE_STRIPE_RGB: tuple[tuple[int, int, int], tuple[int, int, int]] = ((255, 255, 255), (34, 34, 34))


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    """``"#E69F00"`` -> ``(230, 159, 0)``."""
    v = value.lstrip("#")
    if len(v) != 6:
        raise ValueError(f"expected a colour like '#RRGGBB', got {value!r}")
    return int(v[0:2], 16), int(v[2:4], 16), int(v[4:6], 16)


DIGIT_COLORS_RGB: np.ndarray = np.array(MASK_PALETTE_RGB[1:], dtype=np.uint8)
DIGIT_COLORS_RGB.setflags(write=False)


def label_color(label: int) -> tuple[int, int, int] | None:
    """RGB colour of a digit label (1..10); ``None`` for background; raises for anything else."""
    label = int(label)
    if label == BACKGROUND:
        return None
    if 1 <= label <= 10:
        r, g, b = DIGIT_COLORS_RGB[label - 1]
        return int(r), int(g), int(b)
    if label == IGNORE:
        raise ValueError("label 255 (ignore) has no single colour; it is drawn as stripes")
    raise ValueError(f"label {label} is outside the CEMNIST label space {{0..10, 255}}")


def label_name(label: int) -> str:
    """Human-readable name: ``"bg"``, ``"0"``..``"9"``, ``"ignore"``."""
    label = int(label)
    if label == BACKGROUND:
        return "bg"
    if 1 <= label <= 10:
        return str(label - 1)
    if label == IGNORE:
        return "ignore"
    raise ValueError(f"label {label} is outside the CEMNIST label space {{0..10, 255}}")


def color_lut() -> tuple[np.ndarray, np.ndarray]:
    """Return ``(lut, valid)``: ``lut[v]`` is the RGB colour for mask value ``v`` (uint8 [256, 3]);
    ``valid[v]`` tells whether ``v`` is a legal label. Background and ignore rows are zeros."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[1:11] = DIGIT_COLORS_RGB
    valid = np.zeros(256, dtype=bool)
    valid[0:11] = True
    valid[IGNORE] = True
    return lut, valid


def mpl_color(digit: int) -> str:
    """Hex colour of digit ``digit`` (0..9) for matplotlib."""
    if not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be in 0..9, got {digit}")
    return DIGIT_COLORS_HEX[int(digit)]


def legend_handles(digits: Iterable[int] = range(10), *, include_ignore: bool = False) -> list[Any]:
    """matplotlib legend patches for ``digits`` (plus the ignore stripes when asked)."""
    from .figures import require_matplotlib

    require_matplotlib()
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=mpl_color(d), edgecolor="none", label=f"digit {d}") for d in digits]
    if include_ignore:
        handles.append(Patch(facecolor="#FFFFFF", edgecolor="#222222", hatch="////", label="ignore (255)"))
    return handles

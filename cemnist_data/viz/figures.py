"""Figures without pyplot: a matplotlib Figure on an Agg canvas, saved as reproducible PNG bytes (no timestamp).
Public helpers of the data pictures (:mod:`.montage`) and of the results' pictures (``cemnist_baselines``)."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from ..fileio import atomic_write_bytes

_VIZ_HINT = "matplotlib is needed for cemnist plots and figures: pip install 'cemnist[viz]'"


def require_matplotlib() -> Any:
    """Import matplotlib with the Agg backend, or raise an ImportError with the install hint."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(_VIZ_HINT) from exc
    matplotlib.use("Agg", force=True)
    return matplotlib


def new_figure(width: float, height: float, *, dpi: int = 100) -> Any:
    """Return a matplotlib Figure attached to an Agg canvas (no pyplot, no global state)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def figure_to_rgb(fig: Any) -> "Any":
    """Render a Figure and return its pixels as an RGB uint8 array [H, W, 3]."""
    import numpy as np

    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int | None = None) -> Path:
    """Save a Figure as PNG atomically (no timestamp metadata, so bytes are reproducible)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return atomic_write_bytes(path, buf.getvalue())


def figure_png_bytes(fig: Any, *, dpi: int | None = None) -> bytes:
    """Return the PNG bytes of a Figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()

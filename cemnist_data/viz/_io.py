"""Small I/O helpers shared by the visualisation modules (atomic writes, lazy matplotlib)."""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

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


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 text atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


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

"""The pictures of a results folder: plots, training animations and one self-contained HTML page.

- :mod:`.plots` -- mIoU curves and per-class IoU heatmaps, drawn from result JSONs only;
- :mod:`.animations` -- confusion-matrix and prediction GIFs from ``*.trace.safetensors`` files
  (docs/INTERFACES.md, "Run artifacts");
- :mod:`.html` -- :func:`render_report`, everything above plus the leaderboard, the dataset preview and the
  run configs in one ``index.html`` (``cemnist-baselines report``; README.md, "Leaderboard").

Drawing goes through the public helpers of :mod:`cemnist_data.viz` (figures, palette, overlays, GIF writer);
matplotlib is needed (``pip install 'cemnist[viz]'``).
"""
from __future__ import annotations

from .html import computed_leaderboard, render_report

__all__ = ["computed_leaderboard", "render_report"]

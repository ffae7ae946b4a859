"""Pictures of the data: palette, overlays, montages, GIF writing (results pictures: ``cemnist_baselines``).

numpy/pillow-only parts (:mod:`.palette`, :mod:`.overlay`, :mod:`.gif`) import without matplotlib;
figures need the ``viz`` extra (``pip install 'cemnist[viz]'``). Everything is imported lazily.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "overlay": "overlay", "overlay_grid": "overlay", "label_image": "overlay",
    "DIGIT_COLORS_HEX": "palette", "DIGIT_COLORS_RGB": "palette", "label_color": "palette",
    "write_gif": "gif", "select_frames": "gif",
    "show": "montage", "show_compare": "montage", "preview_strip": "montage", "montage_figure": "montage",
    "compare_figure": "montage", "preview_strip_figure": "montage",
    "add_cli_subcommands": "cli",
    "new_figure": "figures", "save_figure": "figures", "figure_to_rgb": "figures", "figure_png_bytes": "figures",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Deterministic, bounded GIF writing with pillow (no ffmpeg, no imageio)."""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..fileio import atomic_write_bytes

DEFAULT_MAX_FRAMES = 60
DEFAULT_MAX_BYTES = 5_000_000
DEFAULT_MAX_SIDE = 720


@dataclass(frozen=True)
class GifInfo:
    """What :func:`write_gif` wrote."""

    path: Path
    n_frames: int
    frame_indices: tuple[int, ...]  # indices into the input frames that were kept
    width: int
    height: int
    n_bytes: int


def select_frames(n: int, *, max_frames: int = DEFAULT_MAX_FRAMES, keep: Iterable[int] = ()) -> list[int]:
    """Pick at most ``max_frames`` of ``n`` frame indices, evenly spaced.

    Indices in ``keep`` (e.g. the last epoch of every task) and the last frame are always kept;
    the remaining slots are spread evenly over the other frames. Returns sorted indices.
    """
    if n <= 0:
        raise ValueError(f"need at least one frame, got n={n}")
    if max_frames <= 0:
        raise ValueError(f"max_frames must be positive, got {max_frames}")
    must = {int(k) for k in keep}
    bad = sorted(k for k in must if not 0 <= k < n)
    if bad:
        raise ValueError(f"keep indices {bad} are outside 0..{n - 1}")
    must.add(n - 1)
    if n <= max_frames:
        return list(range(n))
    if len(must) > max_frames:
        raise ValueError(
            f"max_frames={max_frames} is smaller than the {len(must)} frames that must be kept "
            "(task boundaries + last frame); raise max_frames"
        )
    rest = np.array(sorted(set(range(n)) - must), dtype=np.int64)
    slots = max_frames - len(must)
    chosen: set[int] = set()
    if slots > 0 and rest.size:
        pos = np.linspace(0, rest.size - 1, num=min(slots, rest.size))
        chosen = {int(rest[int(round(p))]) for p in pos}
    return sorted(must | chosen)


def _to_pil_frames(frames: Sequence[np.ndarray], max_side: int) -> list["object"]:
    from PIL import Image

    arrs = [np.asarray(f) for f in frames]
    shape = arrs[0].shape
    for i, a in enumerate(arrs):
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3:
            raise ValueError(f"frame {i} must be an RGB uint8 array [H, W, 3], got {a.dtype} {a.shape}")
        if a.shape != shape:
            raise ValueError(f"all frames must have the same shape; frame 0 is {shape}, frame {i} is {a.shape}")
    imgs = [Image.fromarray(a) for a in arrs]
    h, w = shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        size = (max(1, int(w * scale)), max(1, int(h * scale)))
        imgs = [im.resize(size, Image.Resampling.LANCZOS) for im in imgs]
    return imgs


def _encode(imgs: list, durations: list[int], loop: int) -> bytes:
    from PIL import Image

    # One shared palette for all frames (no flicker, smaller file): median cut over a strided sample.
    sample = np.concatenate([np.asarray(im)[::3, ::3] for im in imgs], axis=0)
    pal_img = Image.fromarray(np.ascontiguousarray(sample)).quantize(
        colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    q = [im.quantize(palette=pal_img, dither=Image.Dither.NONE) for im in imgs]
    buf = io.BytesIO()
    q[0].save(buf, format="GIF", save_all=True, append_images=q[1:], duration=durations, loop=loop,
              optimize=False, disposal=1)
    return buf.getvalue()


def write_gif(
    frames: Sequence[np.ndarray],
    path: str | os.PathLike[str],
    *,
    duration_ms: int = 500,
    last_frame_ms: int = 2000,
    loop: int = 0,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_side: int = DEFAULT_MAX_SIDE,
    keep: Iterable[int] = (),
) -> GifInfo:
    """Write RGB uint8 frames ``[H, W, 3]`` as a looping GIF, atomically and deterministically.

    Bounds: at most ``max_frames`` frames (even subsampling, ``keep`` indices and the last frame always
    kept), longest side at most ``max_side`` pixels, file at most ``max_bytes`` (frames are shrunk
    until it fits; ValueError if even a quarter-size GIF does not). The last frame is held for
    ``last_frame_ms``.
    """
    if len(frames) == 0:
        raise ValueError("need at least one frame")
    if duration_ms <= 0 or last_frame_ms <= 0:
        raise ValueError(f"durations must be positive, got duration_ms={duration_ms}, last_frame_ms={last_frame_ms}")
    if max_side < 16:
        raise ValueError(f"max_side must be >= 16, got {max_side}")
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    idx = select_frames(len(frames), max_frames=max_frames, keep=keep)
    kept = [frames[i] for i in idx]
    durations = [int(duration_ms)] * len(kept)
    durations[-1] = int(last_frame_ms)
    side = max_side
    for _ in range(6):
        imgs = _to_pil_frames(kept, side)
        data = _encode(imgs, durations, loop)
        if len(data) <= max_bytes:
            w, h = imgs[0].size
            out = atomic_write_bytes(path, data)
            return GifInfo(out, len(imgs), tuple(idx), w, h, len(data))
        cur = max(imgs[0].size)
        side = max(16, int(cur * 0.9 * (max_bytes / len(data)) ** 0.5))
        if side >= cur:
            side = cur - 1
    raise ValueError(
        f"could not fit {len(kept)} frames into max_bytes={max_bytes} (last try {len(data)} bytes at "
        f"{imgs[0].size}); lower max_frames or raise max_bytes"
    )

"""Vectorised rendering of multi-digit images and their full label maps.

Rendering rules (v1 protocol, normative):

* a ``canvas x canvas`` image holds ``k`` digits, ``k`` uniform in ``[min_digits, max_digits]``;
* each digit is a 28x28 MNIST image at an integer top-left ``(row, col)`` uniform in
  ``[0, canvas-28]^2``, accepted when its box has IoU <= ``max_iou`` with every box already placed
  (up to ``placement_tries`` tries per digit; if none fits, all digits of the image are placed again
  from scratch, keeping ``k`` and the digits, so ``k`` stays exactly uniform);
* image = sum of the digit intensities, clipped to 255;
* full label map: 0 where every digit intensity is 0; otherwise, per class, intensity =
  min(255, sum of that class's digits) and the pixel gets label ``d + 1`` of the class with the
  highest intensity, ties going to the lower digit.

Every random choice is a counter-based hash of (stream key, image index, attempt, field, slot, try),
so an image depends only on the spec and its own index (see :mod:`cemnist_data.rng`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rng import hash_counters, mix64, uniform_int
from .spec import CemnistSpec

__all__ = ["Rendered", "DigitSource", "render_layout", "sample_stream", "MAX_SLOTS"]

MAX_SLOTS = 4
_F_K, _F_CLASS, _F_INST, _F_POS = 1, 2, 3, 4
_TRIES_PER_ROUND = 8
_MAX_ATTEMPTS = 10_000
RENDER_BLOCK = 128


@dataclass(frozen=True)
class DigitSource:
    """The MNIST instances one split may draw from, grouped by class for vectorised sampling."""

    images: np.ndarray  # uint8 [N, 28, 28], the whole MNIST split (train or test)
    split: str  # "train" or "test" (the MNIST file)
    flat_index: np.ndarray  # int64: MNIST indices sorted by class, then index
    offsets: np.ndarray  # int64 [10]: start of each class in flat_index
    counts: np.ndarray  # int64 [10]: number of instances per class

    @classmethod
    def from_range(cls, images: np.ndarray, labels: np.ndarray, *, split: str, start: int, stop: int) -> "DigitSource":
        """Instances ``start <= i < stop`` of an MNIST split."""
        idx = np.arange(start, stop, dtype=np.int64)
        lab = labels[start:stop]
        order = np.argsort(lab, kind="stable")
        counts = np.bincount(lab, minlength=10).astype(np.int64)
        if (counts == 0).any():
            raise ValueError(f"MNIST {split}[{start}:{stop}] lacks digits {np.flatnonzero(counts == 0).tolist()}")
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        return cls(images=images, split=split, flat_index=idx[order], offsets=offsets, counts=counts)


@dataclass
class Rendered:
    """A batch of rendered images with their provenance (unused digit slots hold -1)."""

    images: np.ndarray  # uint8 [N, H, W]
    full_masks: np.ndarray  # uint8 [N, H, W], labels 0..10
    classes: np.ndarray  # int8 [N, 4], digit of each placed slot
    mnist_index: np.ndarray  # int32 [N, 4]
    top: np.ndarray  # int16 [N, 4]
    left: np.ndarray  # int16 [N, 4]

    @property
    def num_digits(self) -> np.ndarray:
        return (self.classes >= 0).sum(axis=1)

    def __len__(self) -> int:
        return len(self.images)


def _group_ids(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image, number the distinct classes in ascending digit order.

    Returns ``group`` [N, 4] (group of each slot, -1 for unused slots) and ``group_class`` [N, 4]
    (digit of each group, -1 when the group is empty).
    """
    n = classes.shape[0]
    active = classes >= 0
    c = np.where(active, classes, 99).astype(np.int16)
    # first occurrence of each class within the image
    same = c[:, :, None] == c[:, None, :]  # [N, 4, 4]
    earlier = np.tril(np.ones((MAX_SLOTS, MAX_SLOTS), dtype=bool), k=-1)
    first = active & ~(same & earlier[None]).any(axis=2)
    # group id = number of distinct classes smaller than this slot's class
    smaller = (c[:, None, :] < c[:, :, None]) & first[:, None, :]
    group = np.where(active, smaller.sum(axis=2), -1)
    group_class = np.full((n, MAX_SLOTS), -1, dtype=np.int16)
    rows, slots = np.nonzero(first)
    group_class[rows, group[rows, slots]] = c[rows, slots]
    return group, group_class


def render_layout(
    digits: np.ndarray,
    classes: np.ndarray,
    mnist_index: np.ndarray,
    top: np.ndarray,
    left: np.ndarray,
    *,
    canvas: int = 60,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render images and full label maps from an explicit layout.

    ``digits`` is the MNIST image array the indices refer to; the other arguments are ``[N, 4]``
    arrays with -1 in unused slots. Returns ``(images, full_masks, present)``: uint8
    ``[N, canvas, canvas]`` twice and bool ``[N, 11]`` telling which labels occur in each full mask.
    Works in blocks of :data:`RENDER_BLOCK` images so the working set stays in the CPU cache.
    """
    n = classes.shape[0]
    images = np.empty((n, canvas, canvas), dtype=np.uint8)
    full = np.empty((n, canvas, canvas), dtype=np.uint8)
    present = np.zeros((n, 11), dtype=bool)
    for s in range(0, n, RENDER_BLOCK):
        e = min(n, s + RENDER_BLOCK)
        images[s:e], full[s:e], present[s:e] = _render_block(
            digits, classes[s:e], mnist_index[s:e], top[s:e], left[s:e], canvas=canvas
        )
    return images, full, present


def _render_block(
    digits: np.ndarray,
    classes: np.ndarray,
    mnist_index: np.ndarray,
    top: np.ndarray,
    left: np.ndarray,
    *,
    canvas: int,
    want_present: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    n = classes.shape[0]
    size = digits.shape[-1]
    group, group_class = _group_ids(classes)
    n_groups = max(int(group.max()) + 1, 1)
    # One uint8 layer per distinct class: the class intensity min(255, sum of its digits). Adding a
    # digit saturates inside its 28x28 window only, so no full-canvas clipping pass is needed.
    layers = np.zeros((n, n_groups, canvas, canvas), dtype=np.uint8)
    image = np.zeros((n, canvas, canvas), dtype=np.uint8)
    span = canvas - size + 1
    ls, ims = layers.strides, image.strides
    lwin = np.lib.stride_tricks.as_strided(
        layers, (n, n_groups, span, span, size, size), (ls[0], ls[1], ls[2], ls[3], ls[2], ls[3]), writeable=True
    )
    iwin = np.lib.stride_tricks.as_strided(
        image, (n, span, span, size, size), (ims[0], ims[1], ims[2], ims[1], ims[2]), writeable=True
    )
    for j in range(classes.shape[1]):
        rows = np.flatnonzero(classes[:, j] >= 0)
        if rows.size == 0:
            continue
        g, r, c = group[rows, j], top[rows, j], left[rows, j]
        d = digits[mnist_index[rows, j]].astype(np.uint16)
        iwin[rows, r, c] = np.minimum(iwin[rows, r, c] + d, 255)  # saturating: clip to 255 inside the window
        lwin[rows, g, r, c] = np.minimum(lwin[rows, g, r, c] + d, 255)
    # Label: the class with the highest intensity; strict ">" keeps ties with the lower digit
    # (groups are in ascending digit order); intensity 0 never beats background.
    label_of_group = np.where(group_class >= 0, group_class + 1, 0).astype(np.uint8)
    best = np.zeros((n, canvas, canvas), dtype=np.uint8)
    full = np.zeros((n, canvas, canvas), dtype=np.uint8)
    for g in range(n_groups):
        layer = layers[:, g]
        better = layer > best
        np.maximum(best, layer, out=best)
        # full = where(better, label, full) in branch-free uint8 arithmetic (wraps mod 256; several
        # times faster than a masked copy)
        full += better * (label_of_group[:, g, None, None] - full)
    if not want_present:
        return image, full, None
    present = np.zeros((n, 11), dtype=bool)
    rows = np.arange(n)
    for g in range(n_groups):
        wins = (full == label_of_group[:, g, None, None]).any(axis=(1, 2)) & (group_class[:, g] >= 0)
        present[rows, label_of_group[:, g]] |= wins
    return image, full, present


def _place(
    spec: CemnistSpec, base: np.ndarray, k: np.ndarray, *, restart: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rejection-sample top-left corners for the first ``k`` slots of each image.

    Returns ``top``, ``left`` [N, 4] (-1 in unused slots) and ``ok`` [N] (False when some digit found
    no position within ``spec.placement_tries`` tries). Restart ``r`` uses the tries
    ``[r * placement_tries, (r + 1) * placement_tries)`` of every slot, so a restart draws fresh positions
    for all digits of the image.
    """
    n = base.shape[0]
    size = spec.digit_size
    span = spec.max_offset + 1
    num, den = spec.max_iou
    area2 = 2 * size * size
    top = np.full((n, MAX_SLOTS), -1, dtype=np.int64)
    left = np.full((n, MAX_SLOTS), -1, dtype=np.int64)
    ok = np.ones(n, dtype=bool)
    for j in range(MAX_SLOTS):
        need = np.flatnonzero((k > j) & ok)
        first_try = restart * spec.placement_tries
        for t0 in range(0, spec.placement_tries, _TRIES_PER_ROUND):
            if need.size == 0:
                break
            tries = first_try + np.arange(t0, min(t0 + _TRIES_PER_ROUND, spec.placement_tries))
            h = hash_counters(0, base[need, None], _F_POS, j, tries[None, :])  # [M, T]
            r = uniform_int(h, span)
            c = uniform_int(h, span, high_bits=True)
            fits = np.ones(r.shape, dtype=bool)
            for p in range(j):
                dr = np.abs(r - top[need, p, None])
                dc = np.abs(c - left[need, p, None])
                inter = np.maximum(size - dr, 0) * np.maximum(size - dc, 0)
                # IoU = I / (2A - I) <= num/den  <=>  (den + num) * I <= num * 2A   (exact integers)
                fits &= (den + num) * inter <= num * area2
            found = fits.any(axis=1)
            first = fits.argmax(axis=1)
            done = need[found]
            top[done, j] = r[found, first[found]]
            left[done, j] = c[found, first[found]]
            need = need[~found]
        ok[need] = False
    return top, left, ok


def _place_all(spec: CemnistSpec, base: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Place every digit of every image: an image whose placement dead-ends is placed again from
    scratch (fresh positions, same ``k`` and digits), so ``k`` stays exactly uniform."""
    top = np.full((base.size, MAX_SLOTS), -1, dtype=np.int64)
    left = np.full((base.size, MAX_SLOTS), -1, dtype=np.int64)
    todo = np.arange(base.size)
    for r in range(_MAX_ATTEMPTS):
        if todo.size == 0:
            return top, left
        t, l, ok = _place(spec, base[todo], k[todo], restart=r)
        top[todo[ok]], left[todo[ok]] = t[ok], l[ok]
        todo = todo[~ok]
    raise RuntimeError(f"{todo.size} images found no placement in {_MAX_ATTEMPTS} rounds; check the spec")


def sample_stream(
    spec: CemnistSpec,
    source: DigitSource,
    *,
    key: int,
    indices: np.ndarray,
    pool: list[int],
    required: list[int] | None,
) -> Rendered:
    """Render the images ``indices`` of one stream.

    Digit classes are drawn uniformly from ``pool``. With ``required`` set, an image is accepted
    only when its rendered full label map has a pixel of a ``required`` digit; otherwise the image is
    drawn again (``k``, digits, positions) with the next attempt counter.
    """
    indices = np.asarray(indices, dtype=np.int64)
    n = indices.size
    pool_arr = np.asarray(pool, dtype=np.int64)
    if pool_arr.size == 0:
        raise ValueError("the class pool of a stream must not be empty")
    req_mask = np.zeros(11, dtype=bool)
    if required is not None:
        req_mask[np.asarray(required, dtype=np.int64) + 1] = True
    canvas = spec.canvas
    out = Rendered(
        images=np.empty((n, canvas, canvas), dtype=np.uint8),
        full_masks=np.empty((n, canvas, canvas), dtype=np.uint8),
        classes=np.full((n, MAX_SLOTS), -1, dtype=np.int8),
        mnist_index=np.full((n, MAX_SLOTS), -1, dtype=np.int32),
        top=np.full((n, MAX_SLOTS), -1, dtype=np.int16),
        left=np.full((n, MAX_SLOTS), -1, dtype=np.int16),
    )
    pending = np.arange(n)
    attempt = 0
    while pending.size:
        if attempt >= _MAX_ATTEMPTS:
            raise RuntimeError(f"{pending.size} images could not be rendered in {_MAX_ATTEMPTS} attempts; check the spec")
        base = hash_counters(key, indices[pending], attempt)  # one base hash per (image, attempt)
        k = spec.min_digits + uniform_int(mix64(base ^ np.uint64(_F_K)), spec.max_digits - spec.min_digits + 1)
        slots = np.arange(MAX_SLOTS)[None, :]
        active = slots < k[:, None]
        cls = pool_arr[uniform_int(hash_counters(0, base[:, None], _F_CLASS, slots), pool_arr.size)]
        cls = np.where(active, cls, -1)
        keep = np.ones(pending.size, dtype=bool)
        if required is not None:  # cheap pre-check: no required digit -> its mask cannot have one
            keep &= (req_mask[cls + 1] & active).any(axis=1)
        sel = np.flatnonzero(keep)
        top, left = _place_all(spec, base[sel], k[sel])
        cls_s = cls[sel]
        inst_draw = uniform_int(hash_counters(0, base[sel, None], _F_INST, slots), source.counts[np.maximum(cls_s, 0)])
        mnist_index = np.where(cls_s >= 0, source.flat_index[source.offsets[np.maximum(cls_s, 0)] + inst_draw], -1)
        done = np.zeros(pending.size, dtype=bool)
        # render block by block straight into the output rows (keeps the working set in cache)
        for s in range(0, sel.size, RENDER_BLOCK):
            e = min(sel.size, s + RENDER_BLOCK)
            img, full, present = _render_block(source.images, cls_s[s:e], mnist_index[s:e], top[s:e], left[s:e],
                                               canvas=canvas, want_present=required is not None)
            acc = np.arange(e - s) if required is None else np.flatnonzero((present & req_mask).any(axis=1))
            rows = sel[s:e][acc]
            pos = pending[rows]
            out.images[pos] = img[acc]
            out.full_masks[pos] = full[acc]
            out.classes[pos] = cls_s[s:e][acc]
            out.mnist_index[pos] = mnist_index[s:e][acc]
            out.top[pos] = top[s:e][acc]
            out.left[pos] = left[s:e][acc]
            done[rows] = True
        pending = pending[~done]
        attempt += 1
    return out

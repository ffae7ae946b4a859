"""How big and how long a build is, checked before it starts.

A spec with ``train_per_task=100_000_000`` is valid arithmetic but a build that never ends (and
fills the disk). :func:`check_build_size` refuses a build above :data:`MAX_BUILD_IMAGES` rendered
images unless the caller raises the limit on purpose, and :func:`estimate_build` gives the size on
disk and the time it will take, so the command can say so before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import CemnistSpec

__all__ = ["MAX_BUILD_IMAGES", "LARGE_BUILD_IMAGES", "BuildEstimate", "estimate_build", "check_build_size"]

MAX_BUILD_IMAGES = 1_000_000
"""Default limit on the images a build renders: about 29x the published release (35,000), an estimated
1.6 GB and 3-4 minutes on 2 cores. Raise it with ``max_images=`` (CLI ``--max-images``)."""

LARGE_BUILD_IMAGES = 100_000
"""From this many rendered images on, ``cemnist build`` prints its estimate before it starts."""

IMAGES_PER_SECOND = 5_000
"""Build speed used for the time estimate: the 1.0.0 release (35,000 rendered images) builds in
5.9-6.5 s on 2 shared CPU cores (``cemnist build`` with 2 workers, nice 19), i.e. 5,400-5,900 images/s."""

BYTES_PER_ROW = 1_050
"""Parquet bytes per stored row (image + mask + full mask PNGs and the row's fields): 1,042-1,067 in
the 1.0.0 release's manifest (95.5 MB for 91,322 rows)."""


@dataclass(frozen=True)
class BuildEstimate:
    """What a build of a spec costs: images rendered, rows stored, bytes on disk, seconds."""

    images: int
    rows: int
    bytes: int
    seconds: float

    def describe(self) -> str:
        """One line for people: ``35,000 images, about 105 MB on disk, about 7 s``."""
        size = f"{self.bytes / 1e9:.1f} GB" if self.bytes >= 1e9 else f"{self.bytes / 1e6:.0f} MB"
        secs = self.seconds
        took = f"{secs / 3600:.1f} h" if secs >= 3600 else f"{secs / 60:.0f} min" if secs >= 120 else f"{secs:.0f} s"
        return f"{self.images:,} images rendered, {self.rows:,} rows, about {size} on disk, about {took} on 2 cores"


def estimate_build(spec: CemnistSpec) -> BuildEstimate:
    """Images rendered, rows stored (an upper bound for the test splits), bytes and seconds of a build."""
    tasks = spec.num_tasks
    per_task = spec.train_per_task + spec.validation_per_task
    images = 2 * tasks * per_task + spec.test_pool  # overlap and disjoint streams, then the test pool
    # train/validation rows: overlap + disjoint configs + joint (the overlap streams); test rows: the
    # joint pool plus, per task and mode, the pool images whose digits that task has seen (<= the pool)
    rows = 3 * tasks * per_task + spec.test_pool * (1 + 2 * tasks)
    return BuildEstimate(images, rows, rows * BYTES_PER_ROW, images / IMAGES_PER_SECOND)


def check_build_size(spec: CemnistSpec, *, max_images: int = MAX_BUILD_IMAGES) -> BuildEstimate:
    """Refuse (``ValueError``) a build of more than ``max_images`` rendered images; returns its estimate."""
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise ValueError(f"max_images (--max-images) must be a positive integer, got {max_images!r}")
    est = estimate_build(spec)
    if est.images > max_images:
        raise ValueError(
            f"this build would render {est.images:,} images (2 modes x {spec.num_tasks} tasks x "
            f"(train_per_task {spec.train_per_task:,} + validation_per_task {spec.validation_per_task:,}) "
            f"+ test_pool {spec.test_pool:,}): {est.describe()}. The limit is {max_images:,} images. "
            "Fix: lower --train-per-task / --validation-per-task / --test-pool, or raise the limit on "
            f"purpose with --max-images {est.images} (max_images={est.images})."
        )
    return est

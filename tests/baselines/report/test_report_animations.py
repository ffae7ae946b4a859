"""The training animations (cemnist_baselines.report.animations) drawn from synthetic traces."""
import hashlib
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from cemnist_baselines.report.animations import (CONFUSION_GIF, PREDICTION_GIF, confusion_frame_indices,
                                                 confusion_gif, find_traces, load_trace, prediction_gif,
                                                 row_normalise, seen_labels_mask)
from synthetic_results import EPOCHS_PER_TASK, TASKS


def test_load_trace(results_dir):
    paths = find_traces(results_dir)
    assert [p.name.split("-")[0] for p in paths] == ["kd", "mib", "naive"]
    tr = load_trace(paths[0])
    assert tr.method == "kd" and tr.seed == "0"
    assert tr.tasks == TASKS
    assert tr.epoch_confusion.shape == (len(TASKS) * EPOCHS_PER_TASK, 11, 11)


def test_load_trace_rejects_bad_files(tmp_path):
    from safetensors.numpy import save_file

    save_file({"epoch_confusion": np.zeros((2, 10, 10), np.int64)}, str(tmp_path / "a.trace.safetensors"))
    with pytest.raises(ValueError, match="missing tensor 'epoch_task'"):
        load_trace(tmp_path / "a.trace.safetensors")


def test_row_normalise():
    c = np.zeros((11, 11))
    c[0, 0], c[0, 1], c[2, 2] = 3, 1, 5
    n = row_normalise(c)
    assert n[0, 0] == 0.75 and n[2, 2] == 1.0 and np.isnan(n[1]).all()


def test_frame_selection_keeps_task_ends():
    task = np.repeat(np.arange(5), 10)
    idx_in = np.tile(np.arange(1, 11), 5)
    ends = [9, 19, 29, 39, 49]
    sel = confusion_frame_indices(task, idx_in, max_frames=12)
    assert len(sel) == 12 and set(ends) <= set(sel)
    sel = confusion_frame_indices(task, idx_in, every=5, max_frames=60)
    assert sel == [4, 9, 14, 19, 24, 29, 34, 39, 44, 49]
    with pytest.raises(ValueError, match="every"):
        confusion_frame_indices(task, idx_in, every=0)


def test_confusion_gif_bounded_and_deterministic(results_dir, tmp_path):
    path = find_traces(results_dir)[2]
    a = confusion_gif(path, tmp_path / "a.gif", options=replace(CONFUSION_GIF, max_frames=7))
    b = confusion_gif(path, tmp_path / "b.gif", options=replace(CONFUSION_GIF, max_frames=7))
    assert hashlib.sha256((tmp_path / "a.gif").read_bytes()).digest() == hashlib.sha256(
        (tmp_path / "b.gif").read_bytes()).digest()
    ends = [t * EPOCHS_PER_TASK + EPOCHS_PER_TASK - 1 for t in range(len(TASKS))]
    assert a.n_frames == 7 and a.n_bytes < 5_000_000
    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames == 7
        first = np.asarray(im.convert("RGB"))
        im.seek(6)
        last = np.asarray(im.convert("RGB"))
    assert not np.array_equal(first, last)  # the frames show different epochs
    full = confusion_gif(path, tmp_path / "c.gif")
    assert full.n_frames == len(TASKS) * EPOCHS_PER_TASK
    assert set(ends) <= set(full.frame_indices)


def test_prediction_gif(results_dir, tmp_path):
    paths = find_traces(results_dir)
    info = prediction_gif(paths, tmp_path / "p.gif", max_images=3)
    assert info.n_frames == len(TASKS)
    with Image.open(tmp_path / "p.gif") as im:
        assert im.n_frames == len(TASKS) and im.size[1] > im.size[0] * 0.8
    tr = [load_trace(p) for p in paths]
    tr[1].panel_images = tr[1].panel_images.copy()
    tr[1].panel_images[0, 0, 0] ^= 1
    with pytest.raises(ValueError, match="different image panel"):
        prediction_gif({t.method: t for t in tr}, tmp_path / "q.gif")
    with pytest.raises(ValueError, match="at least one trace"):
        prediction_gif({}, tmp_path / "q.gif")


def test_gif_options_set_each_animation_s_frame_durations(results_dir, tmp_path):
    paths = find_traces(results_dir)
    prediction_gif(paths, tmp_path / "p.gif", max_images=1)
    confusion_gif(paths[0], tmp_path / "c.gif", options=replace(CONFUSION_GIF, max_frames=6))
    for name, opts, n in (("p.gif", PREDICTION_GIF, len(TASKS)), ("c.gif", CONFUSION_GIF, 6)):
        with Image.open(tmp_path / name) as im:
            durations = []
            for k in range(im.n_frames):
                im.seek(k)
                durations.append(im.info["duration"])
        assert durations == [opts.duration_ms] * (n - 1) + [opts.last_frame_ms], name
    assert PREDICTION_GIF.duration_ms != CONFUSION_GIF.duration_ms


def test_seen_labels_mask():
    full = np.array([[0, 1, 3, 255, 10]], np.uint8)
    assert seen_labels_mask(full, [0, 1]).tolist() == [[0, 1, 0, 255, 0]]

import numpy as np
import pytest

from cemnist_data.viz import cli
from png_checks import assert_nontrivial_png

TASKS = [[0, 1], [2, 3], [4, 5]]


def _fake_data(n=20):
    rng = np.random.default_rng(0)
    img = np.zeros((n, 60, 60), np.uint8)
    full = np.zeros((n, 60, 60), np.uint8)
    for i in range(n):
        for k, d in enumerate(rng.choice(6, size=2, replace=False)):
            img[i, 5 + 25 * k: 25 + 25 * k, 10:40] = 220
            full[i, 5 + 25 * k: 25 + 25 * k, 10:40] = d + 1
    return img, full


@pytest.fixture
def fake_loader(monkeypatch):
    calls = []
    img, full = _fake_data()

    def load_columns(path, *, config, split, columns, cache_dir=None):
        calls.append((config, split, tuple(columns)))
        t = int(config.rsplit("task", 1)[1]) if "task" in config else None
        keep = TASKS[t] if t is not None else [d for ts in TASKS for d in ts]
        lut = np.zeros(256, np.uint8)
        lut[[d + 1 for d in keep]] = [d + 1 for d in keep]
        train = lut[full]
        cols = {"image": img, "mask": train, "full_mask": full}
        return [cols[c] for c in columns]

    monkeypatch.setattr(cli, "load_columns", load_columns)
    monkeypatch.setattr(cli, "release_info_or_none",
                        lambda path, cache_dir=None: {"version": "9.9.9-test", "setting": "2-2", "tasks": TASKS})
    return calls


@pytest.mark.parametrize("mode", ["train", "full", "compare"])
def test_show(fake_loader, tmp_path, mode):
    out = tmp_path / f"{mode}.png"
    assert cli.main(["show", "--config", "overlap-task1", "-n", "6", "--view", mode, "--out", str(out)]) == 0
    assert_nontrivial_png(out)
    assert fake_loader == [("overlap-task1", "train", ("image", "mask", "full_mask"))]


def test_preview(fake_loader, tmp_path):
    out = tmp_path / "strip.png"
    assert cli.main(["preview", "--per-task", "3", "--out", str(out)]) == 0
    assert_nontrivial_png(out)
    assert [c[0] for c in fake_loader] == ["overlap-task0", "overlap-task1", "overlap-task2"]


def test_pick_indices():
    a = cli.pick_indices(100, num=5, seed=3)
    assert a.tolist() == sorted(set(a.tolist())) and len(a) == 5
    assert np.array_equal(a, cli.pick_indices(100, num=5, seed=3))
    assert cli.pick_indices(3, num=10, seed=0).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="positive"):
        cli.pick_indices(3, num=0, seed=0)
    assert cli.labelled_digits("overlap-task2", {"tasks": TASKS}) == [4, 5]
    assert cli.labelled_digits("joint", {"tasks": TASKS}) == [0, 1, 2, 3, 4, 5]


def test_release_info_or_none_warns_on_missing_but_not_on_corrupt(monkeypatch):
    import cemnist_data
    from cemnist_data.loader import CemnistIntegrityError

    def missing(*a, **k):
        raise FileNotFoundError("no release folder /nowhere")

    monkeypatch.setattr(cemnist_data, "release_info", missing)
    with pytest.warns(UserWarning, match="no release folder /nowhere"):
        assert cli.release_info_or_none("/nowhere") is None

    def corrupt(*a, **k):
        raise CemnistIntegrityError("content hash mismatch")

    monkeypatch.setattr(cemnist_data, "release_info", corrupt)
    with pytest.raises(CemnistIntegrityError, match="content hash mismatch"):
        cli.release_info_or_none("/somewhere")

"""Metrics on hand-built confusion matrices (DATASET_CARD.md, "The evaluation protocol")."""
import pytest
import torch

from cemnist_baselines.metrics import VIEWS, fold, iou_per_label, summarize, task_metrics, update_confusion


def test_confusion_bincount_ignores_255():
    true = torch.tensor([[0, 1, 255], [2, 2, 1]], dtype=torch.uint8)
    pred = torch.tensor([[0, 2, 1], [2, 0, 1]])
    conf = torch.zeros(11, 11, dtype=torch.int64)
    update_confusion(conf, true, pred)
    update_confusion(conf, true, pred)
    exp = torch.zeros(11, 11, dtype=torch.int64)
    for t, p in [(0, 0), (1, 2), (2, 2), (2, 0), (1, 1)]:
        exp[t, p] += 2
    assert torch.equal(conf, exp)


def test_iou_hand_built_with_absent_classes():
    conf = torch.zeros(11, 11, dtype=torch.int64)
    conf[0, 0], conf[0, 1] = 8, 2      # bg: TP 8, FN 2
    conf[1, 1], conf[1, 0] = 3, 1      # label 1: TP 3, FN 1, FP 2
    conf[3, 2] = 4                     # label 3 never predicted; label 2 absent from GT but predicted
    ious = iou_per_label(conf, [0, 1, 2, 3, 4])
    assert ious[0] == pytest.approx(8 / (8 + 2 + 1))
    assert ious[1] == pytest.approx(3 / (3 + 1 + 2))
    assert ious[2] == 0.0              # predicted but absent from the GT: IoU 0
    assert ious[3] == 0.0
    assert ious[4] is None             # seen but absent from GT and predictions: undefined, skipped
    assert ious[5] is None             # unseen
    m = task_metrics(conf, [0, 1, 2, 3, 4])
    assert m["views"]["future_bg"] == m["views"]["future_ignore"]   # no unseen rows: the views agree
    assert m["miou_bg"] == pytest.approx((ious[0] + ious[1]) / 4)
    assert m["miou"] == pytest.approx(ious[1] / 3)
    assert len(m["confusion"]) == 11 and m["confusion"][3][2] == 4


def _diag_step(ious_by_label):
    """A confusion whose per-label IoU is exactly the given value (TP = 100 v, FN = 100 (1 - v))."""
    conf = torch.zeros(11, 11, dtype=torch.int64)
    for lab, v in ious_by_label.items():
        tp = round(100 * v)
        conf[lab, lab] = tp
        conf[lab, 10 if lab != 10 else 9] += 100 - tp  # misses go to a label never seen in these tests
    return conf


def test_summarize_R_old_new_forgetting():
    tasks = [[0, 1], [2, 3], [4, 5]]
    s0 = task_metrics(_diag_step({0: 1.0, 1: 0.9, 2: 0.8}), [0, 1, 2])
    s1 = task_metrics(_diag_step({0: 1.0, 1: 0.5, 2: 0.85, 3: 0.7, 4: 0.9}), [0, 1, 2, 3, 4])
    s2 = task_metrics(_diag_step({0: 1.0, 1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4, 5: 0.5, 6: 0.6}), list(range(7)))
    out = summarize([s0, s1, s2], tasks)
    for view in VIEWS:  # no future-class pixels in these matrices: both views agree
        R, f = out["R"][view], out["final"][view]
        assert R[0][0] == pytest.approx(0.85) and R[0][1] is None and R[0][2] is None
        assert R[1][0] == pytest.approx(0.675) and R[1][1] == pytest.approx(0.8) and R[1][2] is None
        assert R[2] == pytest.approx([0.15, 0.35, 0.55])
        assert f["old"] == pytest.approx((0.1 + 0.2 + 0.3 + 0.4) / 4)
        assert f["new"] == pytest.approx(0.55)
        assert f["old_bg"] == pytest.approx((1.0 + 0.1 + 0.2 + 0.3 + 0.4) / 5)
        assert f["new_bg"] == pytest.approx((1.0 + 0.5 + 0.6) / 3)
        # MiB/PLOP split: first task's digits vs every later digit; PLOP counts background as old
        assert f["first"] == pytest.approx((0.1 + 0.2) / 2)
        assert f["first_bg"] == pytest.approx((1.0 + 0.1 + 0.2) / 3)
        assert f["later"] == pytest.approx((0.3 + 0.4 + 0.5 + 0.6) / 4)
        assert f["later_bg"] == pytest.approx((1.0 + 0.3 + 0.4 + 0.5 + 0.6) / 5)
        assert f["miou_bg"] == pytest.approx(sum([1.0, .1, .2, .3, .4, .5, .6]) / 7)
        assert f["miou"] == pytest.approx(sum([.1, .2, .3, .4, .5, .6]) / 6)
        assert f["avg_inc_miou_bg"] == pytest.approx((s0["miou_bg"] + s1["miou_bg"] + s2["miou_bg"]) / 3)
        # per class (keys = digits): max over earlier steps (digit 1: step 1) - final
        assert f["forgetting_class_each"] == pytest.approx({"0": 0.8, "1": 0.65, "2": 0.4, "3": 0.5})
        assert f["forgetting_class"] == pytest.approx(0.5875)
        # per task (Chaudhry): task 0: max(R[0][0], R[1][0]) - R[2][0] = 0.85 - 0.15; task 1: 0.8 - 0.35
        assert f["forgetting_task_each"] == pytest.approx({"0": 0.70, "1": 0.45})
        assert f["forgetting_task"] == pytest.approx(0.575)
        assert f["task0_miou_bg"] == pytest.approx((1.0 + 0.9 + 0.8) / 3)


def test_summarize_joint_single_step():
    tasks = [[0, 1], [2, 3]]
    s = task_metrics(_diag_step({0: 1.0, 1: 0.5, 2: 0.6, 3: 0.7, 4: 0.8}), [0, 1, 2, 3, 4])
    out = summarize([s], tasks, seen_upto=[1])
    for view in VIEWS:
        assert out["R"][view] == [pytest.approx([0.55, 0.75])]
        f = out["final"][view]
        assert f["forgetting_task"] is None and f["forgetting_task_each"] == {}
        assert f["forgetting_class"] is None and f["forgetting_class_each"] == {}
        assert f["old"] == pytest.approx(0.55) and f["task0_miou_bg"] is None


def _full_conf():
    """Full-label-space confusion after task 0 (seen labels 0, 1, 2) with pixels of future digits 2 and 3."""
    c = torch.zeros(11, 11, dtype=torch.int64)
    c[0, 0], c[0, 1] = 90, 10          # background: 10 predicted as digit 0
    c[1, 1], c[1, 0] = 30, 10          # digit 0
    c[2, 2], c[2, 1] = 20, 5           # digit 1
    c[3, 0], c[3, 2] = 15, 5           # future digit 2: 15 -> bg, 5 -> digit 1
    c[4, 0] = 7                        # future digit 3, all background
    return c


@pytest.mark.parametrize("view, bg_row, label2_fp_from_bg", [
    ("future_bg", [90 + 15 + 7, 10, 5] + [0] * 8, 5),   # future rows added to the background row
    ("future_ignore", [90, 10, 0] + [0] * 8, 0),        # future rows dropped
])
def test_views_are_folds_of_the_full_confusion(view, bg_row, label2_fp_from_bg):
    c = _full_conf()
    f = fold(c, [0, 1, 2], view)
    assert f[0].tolist() == bg_row
    assert f[3:].sum() == 0 and f[1].tolist() == c[1].tolist() and f[2].tolist() == c[2].tolist()
    assert f.sum() == (c.sum() if view == "future_bg" else c[:3].sum())
    ious = iou_per_label(f, [0, 1, 2])
    tp_bg, tp1, tp2 = f[0, 0], 30, 20
    assert ious[0] == pytest.approx(float(tp_bg / (f[0].sum() + f[:, 0].sum() - tp_bg)))
    assert ious[1] == pytest.approx(tp1 / (40 + 10 + 5))              # row 40; FP: 10 bg + 5 digit-1 pixels
    assert ious[2] == pytest.approx(tp2 / (25 + label2_fp_from_bg))   # row 25; FP: future pixels only if folded
    m = task_metrics(c, [0, 1, 2])
    assert m["views"][view]["iou_per_label"] == pytest.approx(ious, abs=0)
    assert m["confusion"] == c.tolist()                                           # the full matrix is stored
    assert m["iou_per_label"] == m["views"]["future_bg"]["iou_per_label"]          # headline = future -> bg


def test_fold_rejects_unknown_view():
    with pytest.raises(ValueError, match="unknown view 'mib'"):
        fold(_full_conf(), [0, 1, 2], "mib")


def _pool():
    """A hand-built pool of 4 one-row 'images' (full masks) and a fixed prediction that never changes."""
    full = torch.tensor([[1, 1, 2, 0], [3, 3, 0, 0], [5, 5, 0, 0], [7, 0, 0, 0]], dtype=torch.uint8)
    pred = torch.tensor([[1, 0, 2, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.uint8)
    return full, pred


def test_unchanged_model_shows_zero_forgetting_on_the_fixed_pool():
    """A model whose predictions never change has no forgetting when every step is scored on one pool;
    under the old scheme (step t scored on the images holding a seen digit) the same model 'forgets'."""
    full, pred = _pool()
    tasks = [[0, 1], [2, 3], [4, 5], [6, 7]]
    seen = lambda t: [0] + [d + 1 for k in range(t + 1) for d in tasks[k]]  # noqa: E731
    fixed = []
    old_scheme = []
    for t in range(len(tasks)):
        c = update_confusion(torch.zeros(11, 11, dtype=torch.int64), full, pred)
        fixed.append(task_metrics(c, seen(t)))
        # old scheme: only images with a digit of tasks <= t, future digits -> background
        rows = [i for i in range(full.shape[0]) if any(0 < v <= 2 * (t + 1) for v in full[i].tolist())]
        view = torch.where(full[rows] > 2 * (t + 1), torch.zeros_like(full[rows]), full[rows])
        old_scheme.append(task_metrics(update_confusion(torch.zeros(11, 11, dtype=torch.int64), view, pred[rows]),
                                       seen(t)))
    f = summarize(fixed, tasks)["final"]["future_bg"]
    assert f["forgetting_task"] == 0.0 and f["forgetting_class"] == 0.0
    assert f["forgetting_task_each"] == {"0": 0.0, "1": 0.0, "2": 0.0}
    assert summarize(old_scheme, tasks)["final"]["future_bg"]["forgetting_class"] > 0.0
    # In MiB's view an old digit predicted on a then-future digit's pixels is ignored until that digit is
    # learned, then counts as a false positive: an unchanged model can show forgetting there (documented).
    assert summarize(fixed, tasks)["final"]["future_ignore"]["forgetting_task"] > 0.0

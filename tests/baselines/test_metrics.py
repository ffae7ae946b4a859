"""Metrics on hand-built confusion matrices (issue 3 §4, §9)."""
import pytest
import torch

from cemnist_baselines.metrics import iou_per_label, step_metrics, summarize, update_confusion


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
    m = step_metrics(conf, [0, 1, 2, 3, 4])
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
    s0 = step_metrics(_diag_step({0: 1.0, 1: 0.9, 2: 0.8}), [0, 1, 2])
    s1 = step_metrics(_diag_step({0: 1.0, 1: 0.5, 2: 0.85, 3: 0.7, 4: 0.9}), [0, 1, 2, 3, 4])
    s2 = step_metrics(_diag_step({0: 1.0, 1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4, 5: 0.5, 6: 0.6}), list(range(7)))
    out = summarize([s0, s1, s2], tasks)
    R, f = out["R"], out["final"]
    assert R[0][0] == pytest.approx(0.85) and R[0][1] is None and R[0][2] is None
    assert R[1][0] == pytest.approx(0.675) and R[1][1] == pytest.approx(0.8) and R[1][2] is None
    assert R[2] == pytest.approx([0.15, 0.35, 0.55])
    assert f["old"] == pytest.approx((0.1 + 0.2 + 0.3 + 0.4) / 4)
    assert f["new"] == pytest.approx(0.55)
    assert f["old_bg"] == pytest.approx((1.0 + 0.1 + 0.2 + 0.3 + 0.4) / 5)
    assert f["new_bg"] == pytest.approx((1.0 + 0.5 + 0.6) / 3)
    assert f["miou_bg"] == pytest.approx(sum([1.0, .1, .2, .3, .4, .5, .6]) / 7)
    assert f["miou"] == pytest.approx(sum([.1, .2, .3, .4, .5, .6]) / 6)
    assert f["avg_inc_miou_bg"] == pytest.approx((s0["miou_bg"] + s1["miou_bg"] + s2["miou_bg"]) / 3)
    # forgetting per digit (keys = digits): max over earlier steps (digit 1: step 1) - final
    assert f["forgetting_per_class"] == pytest.approx({"0": 0.8, "1": 0.65, "2": 0.4, "3": 0.5})
    assert f["forgetting"] == pytest.approx(0.5875)
    assert f["task0_miou_bg"] == pytest.approx((1.0 + 0.9 + 0.8) / 3)


def test_summarize_joint_single_step():
    tasks = [[0, 1], [2, 3]]
    s = step_metrics(_diag_step({0: 1.0, 1: 0.5, 2: 0.6, 3: 0.7, 4: 0.8}), [0, 1, 2, 3, 4])
    out = summarize([s], tasks, step_tasks=[1])
    assert out["R"] == [pytest.approx([0.55, 0.75])]
    assert out["final"]["forgetting"] is None and out["final"]["forgetting_per_class"] == {}
    assert out["final"]["old"] == pytest.approx(0.55)

"""The report page (cemnist_baselines.report.render_report) of synthetic results; with ``-m chromium``, opened in
headless Chromium."""
import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cemnist_baselines.registry import METHODS, method_source
from cemnist_baselines.report import computed_leaderboard, render_report
from cemnist_baselines.results import load_results
from cemnist_baselines.validate import load_validated, load_valid_results

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def report(results_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    preview = out / "in_preview.png"
    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8), (32, 1))).save(preview)
    page = render_report(results_dir, out / "site", preview_png=preview, title="SYNTHETIC test report",
                         max_frames=8)
    return page


def test_synthetic_results_pass_the_validating_loader(results_dir):
    ok, refused = load_validated([results_dir])
    assert refused == [] and len(ok) == 6
    assert sorted((r["method"], r["seed"]) for r in load_valid_results(results_dir)) == [
        (m, s) for m in ("kd", "mib", "naive") for s in (0, 1)]
    assert {r["method"]: r["method_source"] for r in ok} == {m: method_source(METHODS[m]) for m in ("naive", "kd", "mib")}


def test_report_files(report):
    site = report.parent
    names = {p.name for p in site.iterdir()}
    assert {"index.html", "miou_2-2_overlap_synthetic-test.png", "class_iou_2-2_overlap_synthetic-test.png",
            "predictions_2-2_overlap_synthetic-test_seed0.gif", "preview_strip.png",
            "confusion_naive-2-2-overlap-seed0.gif", "confusion_kd-2-2-overlap-seed0.gif",
            "confusion_mib-2-2-overlap-seed0.gif"} <= names
    assert not [n for n in names if n.endswith(".tmp")]


def test_report_html_self_contained(report):
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text, re.I)
    assert "@import" not in text and "url(" not in text
    srcs = re.findall(r'<img src="([^"]+)"', text)
    assert len(srcs) == 7
    for src in srcs:
        m = re.fullmatch(r"data:image/(png|gif);base64,([A-Za-z0-9+/=]+)", src)
        assert m, src[:60]
        raw = base64.b64decode(m.group(2))
        assert raw[:4] in (b"\x89PNG", b"GIF8")
    # leaderboard (computed, no CSV present): mib's final mIoU (bg) mean ± std in percent
    assert "naive" in text and "± " in text and "SYNTHETIC test report" in text
    assert text.count("<details>") == 6  # one config per run


def test_leaderboard_from_jsons(results_dir, tmp_path):
    runs = load_results(results_dir)
    header, rows = computed_leaderboard(runs)
    assert header[:6] == ["setting", "mode", "protocol", "device", "method", "seeds"]
    assert header[6:8] == ["mIoU (bg)", "mIoU (digits)"] and "0-1 first task" in header
    assert [r[4] for r in rows] == ["naive", "kd", "mib"]
    vals = [r["final"]["future_bg"]["miou_bg"] for r in runs if r["method"] == "mib"]
    assert rows[2][6] == f"{np.mean(vals) * 100:.1f} ± {np.std(vals, ddof=1) * 100:.1f}"
    for p in results_dir.glob("*.json"):
        shutil.copy(p, tmp_path / p.name)
    page = render_report(tmp_path, tmp_path / "out")
    assert rows[2][6] in page.read_text(encoding="utf-8")


def test_report_errors(tmp_path):
    with pytest.raises(ValueError, match="holds no result JSON"):
        render_report(tmp_path, tmp_path / "out")


@pytest.mark.chromium
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")
def test_report_in_headless_chromium(report, tmp_path):
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=10000", "--dump-dom", report.as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    body = re.search(r"<body[^>]*>", res.stdout)
    assert body, res.stdout[:500]
    assert 'data-images="7"' in body.group(0)
    assert 'data-images-ok="yes"' in body.group(0), body.group(0)
    assert "all 7 images loaded" in res.stdout

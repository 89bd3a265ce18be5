"""Depth errors (closed form, invariances), FR/AUC, and the report files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sfray.evaluate.depth import depth_errors, fit_scale_shift
from sfray.evaluate.landmarks import auc, failure_rate, landmark_summary, nme


def test_depth_is_invariant_to_scale_shift_and_sign():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.2, 0.9, size=(20, 20))
    mask = rng.random(gt.shape) < 0.7
    for a, b in ((3.0, 2.0), (-0.5, 10.0)):  # a negative scale: "near = bright" vs "near = small z"
        errs = depth_errors(a * gt + b, gt, mask)
        assert errs["si_rmse"] == pytest.approx(0.0, abs=1e-12) and errs["si_mae"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(fit_scale_shift(2 * gt - 1, gt, mask), (0.5, 0.5))


def test_depth_error_closed_form():
    gt = np.array([[0.0, 1.0], [0.0, 1.0]])
    pred = np.array([[0.0, 0.0], [1.0, 1.0]])  # uncorrelated with gt: the fit is the gt mean
    errs = depth_errors(pred, gt, np.ones((2, 2), dtype=bool))
    assert errs["si_rmse"] == pytest.approx(0.5) and errs["si_mae"] == pytest.approx(0.5)
    metric = depth_errors(np.full((2, 2), 2.0), np.full((2, 2), 1.0), np.ones((2, 2), bool), metric=True)
    assert metric["abs_rel"] == pytest.approx(1.0) and metric["rmse"] == pytest.approx(1.0)
    assert np.isnan(depth_errors(pred, gt, np.zeros((2, 2), bool))["si_rmse"])


def test_fr_auc_closed_form_and_inter_pupil():
    assert auc([0.04], threshold=0.08) == pytest.approx(0.5, abs=1e-3)
    assert failure_rate([0.01, 0.09, 0.2, 0.05], 0.08) == pytest.approx(0.5)
    s = landmark_summary([0.02, 0.04])
    assert s["nme"] == pytest.approx(0.03) and s["images"] == 2
    gt = np.zeros((1, 68, 2))
    gt[0, 36:42] = [0.0, 0.0]
    gt[0, 42:48] = [8.0, 6.0]  # eye centres 10 apart
    pred = gt + [0.0, 1.0]
    assert nme(pred, gt, norm="inter_pupil")[0] == pytest.approx(0.1)


def test_report_files_tables_and_figure(tmp_path):
    from PIL import Image

    from sfray.benchmarks.schemas import LAPA_SCHEMA
    from sfray.evaluate.report import QualitativeRow, qualitative_figure, write_report
    from sfray.evaluate.scoring import ScoreReport, SplitScorer

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 11, size=(16, 16))
    results = []
    for method, noise in (("direct mapping", 0.5), ("SB+LF", 0.1)):
        scorer = SplitScorer("test", schema=LAPA_SCHEMA, corners=(66, 79))
        pred = np.where(rng.random(gt.shape) < noise, rng.integers(0, 11, gt.shape), gt)
        scorer.add_labels("a.jpg", pred, gt)
        pts = rng.uniform(0, 16, (106, 2))
        scorer.add_landmarks("a.jpg", pts + noise, pts)
        scorer.skip("parsing", "b.jpg")
        results.append((method, ScoreReport("lapa", "/data/lapa", {"test": scorer.result()})))
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    fig = qualitative_figure([QualitativeRow("a.jpg", img, gt_labels=gt, pred_labels=gt,
                                             gt_landmarks=pts, pred_landmarks=pts + 1)], LAPA_SCHEMA, cell=64)
    paths = write_report(tmp_path / "out", results, figure=fig, title="Stage II")
    md = paths["md"].read_text()
    assert "| Method | skin | left_eyebrow |" in md and md.count("| direct mapping |") == 3
    assert "| SB+LF |" in md and "qualitative.png" in md and "b.jpg" not in md
    data = json.loads(paths["json"].read_text())  # strict JSON (NaN would be rejected by other tools)
    assert [r["method"] for r in data["results"]] == ["direct mapping", "SB+LF"]
    assert data["results"][0]["splits"]["test"]["skipped"]["parsing"] == ["b.jpg"]
    with Image.open(paths["figure"]) as im:
        assert im.size[0] == 5 * (64 + 4) + 4  # input + 2 landmark + 2 parsing columns

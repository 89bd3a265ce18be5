import numpy as np
import pytest

from sfray.evaluate.landmarks import auc, failure_rate, nme
from sfray.evaluate.segmentation import ConfusionMatrix


def test_nme_closed_form_and_scale_invariance():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, size=(3, 68, 2))
    gt[:, 36] = [10.0, 50.0]
    gt[:, 45] = [70.0, 50.0]  # inter-ocular 60
    pred = gt + np.array([3.0, 4.0])  # every point off by 5 px
    np.testing.assert_allclose(nme(pred, gt), 5.0 / 60.0)
    np.testing.assert_allclose(nme(pred * 7.0, gt * 7.0), 5.0 / 60.0)
    assert failure_rate([0.01, 0.2, 0.05], 0.08) == pytest.approx(1 / 3)
    assert auc([0.0, 0.0]) == pytest.approx(1.0, abs=1e-3)
    assert auc([1.0]) == 0.0


def test_f1_matches_an_independent_count():
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 5, size=(4, 16, 16))
    pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 5, size=gt.shape))
    cm = ConfusionMatrix(5)
    for p, t in zip(pred, gt):
        cm.update(p, t)
    for c in range(5):
        tp = np.sum((pred == c) & (gt == c))
        expected = 2 * tp / (np.sum(pred == c) + np.sum(gt == c))
        assert cm.f1()[c] == pytest.approx(expected)
    assert cm.mean_f1(exclude=[0]) == pytest.approx(np.mean(cm.f1()[1:]))

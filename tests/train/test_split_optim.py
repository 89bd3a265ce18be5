"""The held-out split rule and the learning-rate schedule."""

from __future__ import annotations

import numpy as np
import pytest

from sfray.config.train import OptimSection
from sfray.train.optim import LearningRate
from sfray.train.split import HeldOutSplit, splitmix64


def test_split_depends_on_the_id_only():
    split = HeldOutSplit(0.1, salt=0)
    ids = np.arange(20_000)
    held = split.is_held_out(ids)
    assert abs(held.mean() - 0.1) < 0.01
    shuffled = np.random.default_rng(0).permutation(ids)
    assert np.array_equal(split.is_held_out(shuffled), held[shuffled])  # order does not matter
    assert np.array_equal(split.is_held_out(ids[:500]), held[:500])  # a grown dataset keeps its split
    other = HeldOutSplit(0.1, salt=1).is_held_out(ids)
    assert 0.05 < (other & held).sum() / held.sum() < 0.2  # another salt: an independent choice
    assert int(splitmix64(np.array([0], np.uint64))[0]) == 0xE220A8397B1DCDAF  # the published first output


def test_cosine_with_floor_and_warmup():
    cfg = OptimSection(lr_heads=1e-3, lr_encoder=1e-4, min_lr=1e-6, warmup_steps=10)
    lr = LearningRate(cfg, total_steps=110, steps_per_epoch=11)
    assert lr.rate(1e-3, 0) == pytest.approx(1e-3 * 0.1, rel=1e-3)  # warm-up step 1 of 10
    assert lr.rate(1e-3, 10) == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5 * (1 + np.cos(np.pi * 10 / 110)))
    assert lr.rate(1e-3, 110) == pytest.approx(1e-6)
    assert lr.rate(1e-4, 55) < lr.rate(1e-4, 20)
    flat = LearningRate(OptimSection(min_lr=1e-5), 100, 10)
    assert flat.rate(1e-5, 0) == pytest.approx(1e-5) == flat.rate(1e-5, 77)  # the release's encoder stays flat


def test_epoch_schedule_is_piecewise_constant():
    lr = LearningRate(OptimSection(schedule_unit="epoch", min_lr=0.0), total_steps=100, steps_per_epoch=10)
    assert lr.rate(1.0, 10) == lr.rate(1.0, 19) > lr.rate(1.0, 20)

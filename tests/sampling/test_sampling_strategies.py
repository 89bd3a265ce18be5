"""Sampling strategies: purity in (seed, id, config), ranges, registry, coverage."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import qmc

from sfray.config.registries import GUIDED_STRATEGIES
from sfray.config.schema import CameraConfig, SamplingConfig
from sfray.errors import ConfigError
from sfray.sampling import STRATEGIES, Dims, describe_strategies, draw_samples, get_strategy, pose_from_unit
from sfray.sampling.basic import TRUNCATION_BOUND
from sfray.sampling.diverse import DIVERSE_WINDOW, _features
from sfray.sampling.rng import sample_seeds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from guide_rows import guide_kw  # noqa: E402

DIMS = Dims(n_shape=12, n_expression=6, latent_dim=5)
FIELDS = ("shape", "expression", "latent", "pose_u", "camera_u")


def _cfg(strategy: str, **kw) -> SamplingConfig:
    return SamplingConfig(strategy=strategy, jaw_open_range=[0.0, 0.35], eye_range=[-0.25, 0.25],
                          neck_range=[-0.1, 0.2], **{**guide_kw(strategy, DIMS), **kw})


def _draw(strategy, ids, seed=7, dims=DIMS, **kw):
    return draw_samples(np.asarray(ids), seed, _cfg(strategy, **kw), CameraConfig(), dims)


def _same(a, b):
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_same_id_same_sample_whatever_the_batch(name):
    n = 24
    whole = _draw(name, np.arange(n))
    halves = [_draw(name, np.arange(n // 2, n)), _draw(name, np.arange(0, n // 2))]
    assert _same(whole, type(whole).stack_rows([halves[1], halves[0]]))
    perm = np.random.default_rng(0).permutation(n)
    assert _same(whole.take(perm), _draw(name, perm))
    assert _same(whole.take(np.array([17])), _draw(name, [17]))
    for f in FIELDS:  # shapes and distinct rows
        arr = getattr(whole, f)
        assert arr.shape[0] == n and len({row.tobytes() for row in arr}) == n, f
    if name not in GUIDED_STRATEGIES:  # a guide's rows were chosen with their seed; the dataset seed is not read
        assert not _same(whole, _draw(name, np.arange(n), seed=8))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_ranges_respected(name):
    sampling = _cfg(name, shape_scale=0.5, expression_scale=1.5)
    d = draw_samples(np.arange(200), 1, sampling, CameraConfig(), DIMS)
    for f in ("pose_u", "camera_u"):
        u = getattr(d, f)
        assert (u >= 0).all() and (u < 1).all(), f
    pose = pose_from_unit(d.pose_u, sampling)
    assert pose.shape == (200, 15) and (pose[:, 0:3] == 0).all()  # global stays zero
    assert ((pose[:, 3:6] >= -0.1) & (pose[:, 3:6] <= 0.2)).all()
    assert ((pose[:, 6] >= 0) & (pose[:, 6] <= 0.35)).all() and (pose[:, 7:9] == 0).all()
    assert ((pose[:, 9:11] >= -0.25) & (pose[:, 9:11] <= 0.25)).all() and (pose[:, 11] == 0).all()
    assert np.array_equal(pose[:, 9:12], pose[:, 12:15])  # one gaze for both eyes
    assert np.isfinite(d.shape).all() and np.isfinite(d.expression).all()
    if name == "uniform":
        assert np.abs(d.shape).max() <= 2 * 0.5 and np.abs(d.expression).max() <= 2 * 1.5
        assert np.abs(d.shape).max() > 0.9  # really spans the release's U(-2, 2) * scale
    if name == "truncated":
        assert np.abs(d.latent).max() <= TRUNCATION_BOUND
        assert np.abs(d.shape).max() <= TRUNCATION_BOUND * 0.5
    if name == "gaussian":
        assert abs(d.shape.std() - 0.5) < 0.05 and abs(d.expression.std() - 1.5) < 0.15


def test_unknown_strategy_names_the_valid_ones():
    valid = re.escape("gaussian | uniform | truncated | sobol | diverse")  # from the registry
    with pytest.raises(ConfigError, match=f"sampling.strategy.*'halton'.*{valid}"):
        get_strategy("halton")
    with pytest.raises(ConfigError):
        _draw("halton", [0])
    assert set(describe_strategies()) == set(STRATEGIES) and all(describe_strategies().values())


def test_sobol_covers_better_than_iid():
    n = 256
    cover = {}
    for name in ("sobol", "gaussian", "uniform"):
        d = _draw(name, np.arange(n))
        cover[name] = qmc.discrepancy(np.concatenate([d.camera_u, d.pose_u], axis=1))
    assert cover["sobol"] < 0.5 * min(cover["gaussian"], cover["uniform"]), cover


def test_sobol_point_is_computed_from_the_id_alone():
    far = _draw("sobol", [100_000, 5, 100_001])
    assert _same(far.take(np.array([1])), _draw("sobol", [5]))
    assert _same(far.take(np.array([2])), _draw("sobol", np.arange(99_990, 100_002)).take(np.array([11])))


def test_diverse_pool_of_one_is_gaussian_and_larger_pools_spread_out():
    ids = np.arange(40, 240)
    assert _same(_draw("diverse", ids, candidate_pool=1), _draw("gaussian", ids))
    sampling, cam = _cfg("diverse", candidate_pool=8), CameraConfig()

    def min_dist_to_window(d):
        ref = _features(_draw("gaussian", np.arange(ids[0] - DIVERSE_WINDOW, ids[-1])), sampling, cam)
        feats = _features(d, sampling, cam)
        out = []
        for k, sid in enumerate(ids):
            rows = np.arange(sid - DIVERSE_WINDOW, sid) - (ids[0] - DIVERSE_WINDOW)
            out.append(np.linalg.norm(ref[rows] - feats[k], axis=1).min())
        return np.array(out)

    diverse = min_dist_to_window(_draw("diverse", ids, candidate_pool=8))
    gaussian = min_dist_to_window(_draw("gaussian", ids))
    # Candidate 0 is the Gaussian sample, so the farthest candidate is never closer than it.
    assert (diverse >= gaussian - 1e-12).all() and diverse.mean() > 1.1 * gaussian.mean()


def test_prefix_stability_and_seeds():
    small = _draw("gaussian", np.arange(5), dims=Dims(4, 3, 2))
    large = _draw("gaussian", np.arange(5), dims=Dims(12, 6, 5))
    assert np.array_equal(large.shape[:, :4], small.shape)
    assert np.array_equal(large.expression[:, :3], small.expression)
    assert np.array_equal(large.camera_u, small.camera_u)
    seeds = sample_seeds(np.arange(100), 3)
    assert seeds.dtype == np.int64 and (seeds >= 0).all() and len(set(seeds.tolist())) == 100
    assert np.array_equal(sample_seeds(np.array([42]), 3), seeds[42:43])


def test_bad_ids_and_seed():
    with pytest.raises(ConfigError, match=">= 0"):
        _draw("gaussian", [-1])
    with pytest.raises(ConfigError, match="seed"):
        _draw("gaussian", [1], seed=-3)
    with pytest.raises(ConfigError, match="integer"):
        _draw("gaussian", [0.5])
    assert len(_draw("gaussian", np.zeros(0, dtype=np.int64))) == 0


def test_registry_has_the_schema_default_and_docstrings():
    assert SamplingConfig().strategy in STRATEGIES
    assert all((fn.__doc__ or "").strip() for fn in STRATEGIES.values())

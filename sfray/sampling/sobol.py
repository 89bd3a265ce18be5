"""``sobol``: a scrambled Sobol sequence over camera, pose and expression, indexed by sample id.

Sample ``id`` takes point number ``id`` of one dataset-wide scrambled Sobol sequence (scipy's
``qmc.Sobol``, scramble seeded by the dataset seed and the dimension). The point is computed
directly: reset the engine, fast-forward to ``id``, draw; contiguous ids share one fast-forward.
So the point, like every other strategy's draw, depends on (seed, id, config) only, while the ids
[0, N) together fill the unit cube far more evenly than i.i.d. draws. Coordinates map through
inverse CDFs: camera and pose stay uniform variates over their ranges, expression goes through
the standard normal quantile (times ``expression_scale``). Identity (beta) and latent z are not
part of the sequence and stay i.i.d. Gaussian per sample.

Limit: 32-bit direction numbers, so sample ids must be below 2**32. Fast-forward costs O(id)
(about 10 ms per million ids), paid once per contiguous run of ids in a batch.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import ndtri
from scipy.stats import qmc

from sfray.config.schema import CameraConfig, SamplingConfig
from sfray.errors import ConfigError
from sfray.sampling.draw import CAMERA_VARIATES, POSE_VARIATES, Dims, Draw
from sfray.sampling.rng import Stream, normal

SOBOL_BITS = 32
#: Keeps inverse normal CDFs finite at the (measure-zero) corners of the cube.
_EPS = 1e-9


def _engine(seed: int, dim: int) -> qmc.Sobol:
    scramble = np.random.default_rng(np.random.SeedSequence([int(seed), int(Stream.SOBOL), dim]))
    return qmc.Sobol(dim, scramble=True, bits=SOBOL_BITS, seed=scramble)


def _runs(sorted_ids: np.ndarray) -> list[tuple[int, int]]:
    """Split sorted unique ids into (start, length) runs of consecutive integers."""
    if sorted_ids.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(sorted_ids) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [sorted_ids.size]])
    return [(int(sorted_ids[s]), int(e - s)) for s, e in zip(starts, ends)]


def sobol_points(ids: np.ndarray, seed: int, dim: int) -> np.ndarray:
    """(B, dim) float64 points of the dataset's scrambled Sobol sequence, row i = point ``ids[i]``."""
    if ids.size and int(ids.max()) >= 2**SOBOL_BITS:
        raise ConfigError(f"sampling.strategy=sobol supports sample ids below 2**{SOBOL_BITS}, "
                          f"got {int(ids.max())}")
    uniq, inverse = np.unique(ids, return_inverse=True)
    engine = _engine(seed, dim)
    pts = np.empty((uniq.size, dim), dtype=np.float64)
    row = 0
    with warnings.catch_warnings():
        # scipy warns that balance needs n = 2^m: true of the whole id range, not of one run.
        warnings.simplefilter("ignore")
        for start, length in _runs(uniq):
            engine.reset()
            if start:
                engine.fast_forward(start)
            pts[row:row + length] = engine.random(length)
            row += length
    return np.clip(pts[inverse.reshape(-1)], _EPS, 1.0 - _EPS)


def sobol(ids: np.ndarray, seed: int, sampling: SamplingConfig, camera: CameraConfig, dims: Dims) -> Draw:
    """Low-discrepancy camera, pose and expression; i.i.d. Gaussian identity and latent."""
    nc, npose = len(CAMERA_VARIATES), len(POSE_VARIATES)
    pts = sobol_points(ids, seed, nc + npose + dims.n_expression)
    return Draw(
        shape=normal(ids, seed, Stream.SHAPE, dims.n_shape) * sampling.shape_scale,
        expression=ndtri(pts[:, nc + npose:]) * sampling.expression_scale,
        latent=normal(ids, seed, Stream.LATENT, dims.latent_dim),
        pose_u=pts[:, nc:nc + npose],
        camera_u=pts[:, :nc],
    )

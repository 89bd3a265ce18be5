"""The i.i.d. strategies: ``gaussian`` (paper), ``uniform`` (authors' release), ``truncated``.

All three draw each sample independently from its own streams (:mod:`sfray.sampling.rng`); pose
and camera are uniform variates over the configured ranges in every case.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from sfray.config.schema import CameraConfig, SamplingConfig
from sfray.sampling.draw import CAMERA_VARIATES, POSE_VARIATES, Dims, Draw
from sfray.sampling.rng import Stream, normal, uniform

#: Half-width, in standard deviations, of the ``truncated`` strategy's normal distributions.
TRUNCATION_BOUND = 2.0
#: The authors' release draws beta and psi from U(-RELEASE_HALF_WIDTH, RELEASE_HALF_WIDTH).
RELEASE_HALF_WIDTH = 2.0


def _unit_pose_camera(ids: np.ndarray, seed: int, candidate: int) -> tuple[np.ndarray, np.ndarray]:
    pose_u = uniform(ids, seed, Stream.POSE, len(POSE_VARIATES), candidate)
    camera_u = uniform(ids, seed, Stream.CAMERA, len(CAMERA_VARIATES), candidate)
    return pose_u, camera_u


def gaussian_draw(ids: np.ndarray, seed: int, sampling: SamplingConfig, dims: Dims,
                  candidate: int = 0) -> Draw:
    """One Gaussian candidate per id; candidate 0 is the ``gaussian`` strategy itself."""
    pose_u, camera_u = _unit_pose_camera(ids, seed, candidate)
    return Draw(
        shape=normal(ids, seed, Stream.SHAPE, dims.n_shape, candidate) * sampling.shape_scale,
        expression=normal(ids, seed, Stream.EXPRESSION, dims.n_expression, candidate)
        * sampling.expression_scale,
        latent=normal(ids, seed, Stream.LATENT, dims.latent_dim, candidate),
        pose_u=pose_u,
        camera_u=camera_u,
    )


def gaussian(ids: np.ndarray, seed: int, sampling: SamplingConfig, camera: CameraConfig, dims: Dims) -> Draw:
    """Paper: beta ~ N(0, shape_scale^2), psi ~ N(0, expression_scale^2), z ~ N(0, I), all i.i.d."""
    return gaussian_draw(ids, seed, sampling, dims)


def uniform_release(ids: np.ndarray, seed: int, sampling: SamplingConfig, camera: CameraConfig,
                    dims: Dims) -> Draw:
    """Authors' release: beta, psi ~ U(-2, 2) * scale per coefficient; z ~ N(0, I)."""
    pose_u, camera_u = _unit_pose_camera(ids, seed, 0)
    w = 2.0 * RELEASE_HALF_WIDTH
    shape = (uniform(ids, seed, Stream.SHAPE, dims.n_shape) - 0.5) * w * sampling.shape_scale
    expression = (uniform(ids, seed, Stream.EXPRESSION, dims.n_expression) - 0.5) * w
    expression *= sampling.expression_scale
    return Draw(shape=shape, expression=expression, latent=normal(ids, seed, Stream.LATENT, dims.latent_dim),
                pose_u=pose_u, camera_u=camera_u)


def truncated_normal_ppf(u: np.ndarray, bound: float = TRUNCATION_BOUND) -> np.ndarray:
    """Inverse CDF of N(0, 1) truncated to [-bound, bound]: exact, no rejection loop, pure in ``u``."""
    lo, hi = ndtr(-bound), ndtr(bound)
    x = ndtri(lo + np.asarray(u, dtype=np.float64) * (hi - lo))
    return np.clip(x, -bound, bound)


def truncated(ids: np.ndarray, seed: int, sampling: SamplingConfig, camera: CameraConfig, dims: Dims) -> Draw:
    """z, beta and psi from a normal truncated at +-TRUNCATION_BOUND std (times the scales).

    This is truncation in *input* space. Next3D's own truncation trick is different: it pulls the
    mapped ``w`` towards the average ``w`` by ``sampling.truncation_psi`` (layers below
    ``truncation_cutoff``) inside the generator, and applies with every strategy.
    """
    pose_u, camera_u = _unit_pose_camera(ids, seed, 0)
    return Draw(
        shape=truncated_normal_ppf(uniform(ids, seed, Stream.SHAPE, dims.n_shape)) * sampling.shape_scale,
        expression=truncated_normal_ppf(uniform(ids, seed, Stream.EXPRESSION, dims.n_expression))
        * sampling.expression_scale,
        latent=truncated_normal_ppf(uniform(ids, seed, Stream.LATENT, dims.latent_dim)),
        pose_u=pose_u,
        camera_u=camera_u,
    )

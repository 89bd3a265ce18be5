"""Per-sample random streams: every number of a sample comes from (dataset seed, sample id) alone.

A sample must come out bit for bit the same whether it is generated alone, in a batch of 32, or
after a resume in a batch of different composition. So no generator state is ever shared between
samples: each (dataset seed, sample id, stream, candidate) tuple seeds its own PCG64 through a
``SeedSequence``. Streams keep the quantities independent of each other, so asking for more shape
coefficients changes no expression value, and the first ``S`` coefficients stay the same when ``S``
grows (a generator's draws are a prefix-stable sequence).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from sfray.errors import ConfigError


class Stream(IntEnum):
    """Independent random streams of one sample."""

    SHAPE = 1
    EXPRESSION = 2
    LATENT = 3
    POSE = 4
    CAMERA = 5
    SEED = 6
    SOBOL = 7  # the scramble of the dataset's Sobol sequence (per dataset, not per sample)


def check_ids(sample_ids: np.ndarray, dataset_seed: int) -> np.ndarray:
    """Validate and return ids as a 1-D int64 array (SeedSequence needs non-negative integers)."""
    ids = np.asarray(sample_ids)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise ConfigError(f"sample ids must be a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
    if ids.size and ids.min() < 0:
        raise ConfigError(f"sample ids must be >= 0, got {int(ids.min())}")
    if int(dataset_seed) < 0:
        raise ConfigError(f"config key 'seed' must be >= 0, got {dataset_seed}")
    return ids.astype(np.int64)


def sample_rng(dataset_seed: int, sample_id: int, stream: Stream, candidate: int = 0) -> np.random.Generator:
    """The generator of one (sample, stream, candidate); candidate > 0 is used by ``diverse`` only."""
    seq = np.random.SeedSequence([int(dataset_seed), int(sample_id), int(stream), int(candidate)])
    return np.random.Generator(np.random.PCG64(seq))


def normal(ids: np.ndarray, dataset_seed: int, stream: Stream, dim: int, candidate: int = 0) -> np.ndarray:
    """(B, dim) float64 standard normal draws, row i from sample ``ids[i]`` only."""
    out = np.empty((len(ids), dim), dtype=np.float64)
    for i, sid in enumerate(ids):
        out[i] = sample_rng(dataset_seed, sid, stream, candidate).standard_normal(dim)
    return out


def uniform(ids: np.ndarray, dataset_seed: int, stream: Stream, dim: int, candidate: int = 0) -> np.ndarray:
    """(B, dim) float64 uniform draws in [0, 1), row i from sample ``ids[i]`` only."""
    out = np.empty((len(ids), dim), dtype=np.float64)
    for i, sid in enumerate(ids):
        out[i] = sample_rng(dataset_seed, sid, stream, candidate).random(dim)
    return out


def sample_seeds(ids: np.ndarray, dataset_seed: int) -> np.ndarray:
    """(B,) int64 non-negative per-sample seeds for generator-internal randomness (noise, textures)."""
    out = np.empty(len(ids), dtype=np.int64)
    for i, sid in enumerate(ids):
        seq = np.random.SeedSequence([int(dataset_seed), int(sid), int(Stream.SEED), 0])
        out[i] = int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1))
    return out

"""``diverse``: per sample, the farthest of ``candidate_pool`` candidates from its id-neighbours.

Design (a pure function of (seed, id, config), so batches and resumes still agree):
- Candidate j of sample ``id`` is the Gaussian draw of (seed, id, candidate=j); candidate 0 *is*
  the ``gaussian`` strategy's sample, so ``candidate_pool=1`` reproduces ``gaussian`` exactly.
- The reference set of ``id`` is candidate 0 of the previous ``DIVERSE_WINDOW`` ids
  (``id-1 .. id-W``, those >= 0). Using the previous ids' *chosen* samples instead would make each
  sample depend on all earlier ones (a recursion of depth ``id``); candidate 0 is a cheap,
  non-recursive stand-in that has the same distribution as a random neighbour.
- The kept candidate maximises the minimum distance to the reference set (farthest-point rule);
  id 0 (empty reference) keeps candidate 0.
- Distance lives in a feature space where each group (identity, expression, active pose
  variates, active camera variates) is standardised to unit variance per coordinate and divided
  by sqrt(group size), so every group weighs about the same whatever its dimension; a pose or
  camera variate with an empty range (low == high) carries no weight. The latent z is not part
  of the distance (it is appearance, not geometry) but travels with its candidate.

Farthest-point selection favours the tails: the kept samples are more spread out than Gaussian
ones (which is the point), with a heavier share of large-norm parameters.
Cost: (candidate_pool + DIVERSE_WINDOW) Gaussian draws per sample.
"""

from __future__ import annotations

import numpy as np

from sfray.config.schema import CameraConfig, SamplingConfig
from sfray.sampling.basic import gaussian_draw
from sfray.sampling.draw import Dims, Draw

#: How many preceding ids form the reference set of a sample.
DIVERSE_WINDOW = 16


def _features(draw: Draw, sampling: SamplingConfig, camera: CameraConfig) -> np.ndarray:
    """(B, F) standardised features of a draw (see the module docstring)."""
    groups = []
    for values, scale in ((draw.shape, sampling.shape_scale), (draw.expression, sampling.expression_scale)):
        if values.shape[1] and scale > 0:
            groups.append(values / scale / np.sqrt(values.shape[1]))
    pose_width = [sampling.neck_range] * 3 + [sampling.jaw_open_range] + [sampling.eye_range] * 2
    # Only "is the range empty" matters here (the features are uniform variates).
    from sfray.geometry.camera_sampling import effective_camera_ranges

    ranges = effective_camera_ranges(camera)
    cam_width = [ranges["yaw_range"], ranges["pitch_range"], ranges["fov_range"]]
    for u, ranges in ((draw.pose_u, pose_width), (draw.camera_u, cam_width)):
        active = np.array([hi > lo for lo, hi in ranges], dtype=bool)
        if active.any():
            groups.append((u[:, active] - 0.5) * np.sqrt(12.0) / np.sqrt(active.sum()))
    if not groups:
        return np.zeros((len(draw), 1))
    return np.concatenate(groups, axis=1)


def diverse(ids: np.ndarray, seed: int, sampling: SamplingConfig, camera: CameraConfig, dims: Dims) -> Draw:
    """Farthest-point choice among ``sampling.candidate_pool`` Gaussian candidates per id."""
    pool = int(sampling.candidate_pool)
    candidates = [gaussian_draw(ids, seed, sampling, dims, candidate=j) for j in range(pool)]
    if pool == 1 or len(ids) == 0:
        return candidates[0]
    # Reference ids: id-1 .. id-W; drawn once for the union over the batch.
    offsets = np.arange(1, DIVERSE_WINDOW + 1)
    ref_ids = ids[:, None] - offsets[None, :]  # (B, W)
    uniq = np.unique(ref_ids[ref_ids >= 0])
    ref_feat = None
    if uniq.size:
        ref_feat = _features(gaussian_draw(uniq, seed, sampling, dims, 0), sampling, camera)
    cand_feat = np.stack([_features(c, sampling, camera) for c in candidates], axis=1)  # (B, P, F)
    choice = np.zeros(len(ids), dtype=np.int64)
    for i in range(len(ids)):
        valid = ref_ids[i][ref_ids[i] >= 0]
        if valid.size == 0 or ref_feat is None:
            continue
        ref = ref_feat[np.searchsorted(uniq, valid)]  # (R, F)
        d = np.linalg.norm(cand_feat[i][:, None, :] - ref[None, :, :], axis=-1).min(axis=1)  # (P,)
        choice[i] = int(np.argmax(d))
    rows = [candidates[int(choice[i])].take(np.array([i])) for i in range(len(ids))]
    return Draw.stack_rows(rows)

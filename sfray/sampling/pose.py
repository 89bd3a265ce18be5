"""Pose unit variates -> the 15-number FLAME pose (radians, axis-angle per joint).

Global stays zero: the head's orientation relative to the camera comes from the camera sampler,
as in the authors' release. Neck x/y/z are each uniform in ``sampling.neck_range``; the jaw opens
about x by ``sampling.jaw_open_range``; both eyes share one gaze, pitch (about x) and yaw (about y)
each in ``sampling.eye_range``. All ranges default to [0, 0] (the release's zero pose).
"""

from __future__ import annotations

import numpy as np

from sfray.config.schema import SamplingConfig
from sfray.conventions import JOINT_NAMES, POSE_DIM

_J = {name: 3 * i for i, name in enumerate(JOINT_NAMES)}  # first pose column of each joint


def _lerp(u: np.ndarray, rng: list[float]) -> np.ndarray:
    lo, hi = float(rng[0]), float(rng[1])
    return lo + u * (hi - lo)


def pose_from_unit(pose_u: np.ndarray, sampling: SamplingConfig) -> np.ndarray:
    """(B, 6) unit variates (``POSE_VARIATES`` order) -> (B, 15) float64 axis-angle pose."""
    pose = np.zeros((pose_u.shape[0], POSE_DIM), dtype=np.float64)
    neck = _J["neck"]
    pose[:, neck:neck + 3] = _lerp(pose_u[:, 0:3], sampling.neck_range)
    pose[:, _J["jaw"]] = _lerp(pose_u[:, 3], sampling.jaw_open_range)
    for eye in ("left_eye", "right_eye"):
        pose[:, _J[eye]] = _lerp(pose_u[:, 4], sampling.eye_range)  # pitch, about x
        pose[:, _J[eye] + 1] = _lerp(pose_u[:, 5], sampling.eye_range)  # yaw, about y
    return pose

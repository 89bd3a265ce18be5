"""What a sampling strategy produces: parameters plus unit variates for pose and camera.

Strategies differ only in *how* they fill these arrays; turning unit variates into radians and
camera labels is shared (:mod:`sfray.sampling.specs`), so every strategy respects the same ranges.
Pose and camera are drawn as uniform variates in [0, 1) (quantiles of their ranges) so that
low-discrepancy and farthest-point strategies can work on them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

#: Pose unit variates, in column order: neck (x, y, z), jaw opening, eye pitch, eye yaw.
POSE_VARIATES = ("neck_x", "neck_y", "neck_z", "jaw_open", "eye_pitch", "eye_yaw")
#: Camera unit variates, in column order (the order ``camera_labels_from_uniform`` expects).
CAMERA_VARIATES = ("yaw", "pitch", "fov")


@dataclass(frozen=True)
class Dims:
    """Sizes of the per-sample parameter vectors."""

    n_shape: int
    n_expression: int
    latent_dim: int


@dataclass
class Draw:
    """A batch of B drawn samples (float64 in numpy, converted to float32 tensors later)."""

    shape: np.ndarray  # (B, S) identity coefficients beta, already scaled
    expression: np.ndarray  # (B, E) expression coefficients psi, already scaled
    latent: np.ndarray  # (B, Z) generator latent z
    pose_u: np.ndarray  # (B, 6) uniform variates, columns POSE_VARIATES
    camera_u: np.ndarray  # (B, 3) uniform variates, columns CAMERA_VARIATES

    def __len__(self) -> int:
        return int(self.shape.shape[0])

    def take(self, rows: np.ndarray) -> Draw:
        return Draw(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @staticmethod
    def stack_rows(items: list[Draw]) -> Draw:
        return Draw(**{f.name: np.concatenate([getattr(d, f.name) for d in items]) for f in fields(Draw)})

"""``make_specs``: sample ids -> a batch of :class:`SampleSpecs`, the generators' input.

:class:`SampleSpecs` is defined here, below ``sfray.generators``, because sampling produces it
and every generator consumes it (``sfray.generators.base`` re-exports it for convenience).

The chosen strategy (:mod:`sfray.sampling.strategies`) draws parameters and unit variates; this
module maps the variates into the configured ranges, so every strategy obeys the same limits:
- pose (B, 15) axis-angle from :func:`sfray.sampling.pose.pose_from_unit`;
- camera (B, 25) from ``camera_labels_from_uniform`` (yaw, pitch, fov quantiles of ``camera``);
- cond_camera (B, 25) Next3D's mapping input, per ``camera.conditioning``: the frontal camera at
  ``camera.cond_fov`` (``frontal``) or the rendering camera itself (``render``; docs/synthforge.md).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from sfray.config.registries import CONDITIONING_CAMERAS
from sfray.config.schema import CameraConfig, SamplingConfig
from sfray.conventions import CAMERA_LABEL_DIM
from sfray.geometry.camera import frontal_camera_label
from sfray.geometry.camera_sampling import camera_labels_from_uniform
from sfray.sampling.draw import Dims
from sfray.sampling.pose import pose_from_unit
from sfray.sampling.rng import check_ids, sample_seeds
from sfray.sampling.strategies import draw_samples


@dataclass
class SampleSpecs:
    """A batch of B sample specifications; row i is a pure function of (dataset seed, sample id, config)."""

    sample_id: torch.Tensor  # (B,) int64
    seed: torch.Tensor  # (B,) int64, per-sample seed for generator-internal randomness
    latent: torch.Tensor  # (B, Z) float32; Z = 0 for generators without a latent
    shape: torch.Tensor  # (B, S) float32 identity coefficients beta
    expression: torch.Tensor  # (B, E) float32 expression coefficients psi
    pose: torch.Tensor  # (B, 15) float32 axis-angle: global, neck, jaw, left eye, right eye
    camera: torch.Tensor  # (B, 25) float32 rendering camera label
    cond_camera: torch.Tensor  # (B, 25) float32 conditioning camera label (Next3D mapping)

    def __len__(self) -> int:
        return int(self.sample_id.shape[0])

    def to(self, device: torch.device | str) -> SampleSpecs:
        return SampleSpecs(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def select(self, index: torch.Tensor | slice) -> SampleSpecs:
        return SampleSpecs(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(items: list[SampleSpecs]) -> SampleSpecs:
        return SampleSpecs(
            **{f.name: torch.cat([getattr(s, f.name) for s in items]) for f in fields(SampleSpecs)}
        )


def make_specs(
    sample_ids: np.ndarray | torch.Tensor,
    dataset_seed: int,
    sampling: SamplingConfig,
    camera: CameraConfig,
    *,
    n_shape: int,
    n_expression: int,
    latent_dim: int,
) -> SampleSpecs:
    """Specs for ``sample_ids`` (B,): row i depends only on (dataset_seed, sample_ids[i], config).

    ``latent_dim`` may be 0 (generators without a latent). Returns CPU float32 tensors.
    """
    ids = check_ids(np.asarray(sample_ids.cpu() if isinstance(sample_ids, torch.Tensor) else sample_ids),
                    dataset_seed)
    draw = draw_samples(ids, dataset_seed, sampling, camera, Dims(n_shape, n_expression, latent_dim))
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    cam = torch.zeros(0, CAMERA_LABEL_DIM)  # an empty batch (a fully resumed unit) needs no geometry
    if len(ids):
        cam = f32(camera_labels_from_uniform(draw.camera_u, camera)).reshape(len(ids), CAMERA_LABEL_DIM)
    CONDITIONING_CAMERAS.check(camera.conditioning)
    if camera.conditioning == "render":
        cond = cam.clone()
    else:
        cond = f32(frontal_camera_label(camera.cond_fov, camera.radius, camera.pivot))
        cond = cond.reshape(1, CAMERA_LABEL_DIM).expand(len(ids), -1).clone()
    return SampleSpecs(
        sample_id=torch.as_tensor(ids, dtype=torch.int64),
        seed=torch.as_tensor(sample_seeds(ids, int(dataset_seed)), dtype=torch.int64),
        latent=f32(draw.latent).reshape(len(ids), latent_dim),
        shape=f32(draw.shape).reshape(len(ids), n_shape),
        expression=f32(draw.expression).reshape(len(ids), n_expression),
        pose=f32(pose_from_unit(draw.pose_u, sampling)),
        camera=cam,
        cond_camera=cond,
    )

"""Shared builders for annotator tests: the procedural head, cameras, specs and a mesh-only output."""

from __future__ import annotations

import functools

import torch

from sfray.config.schema import HeadConfig
from sfray.conventions import DEFAULT_CAMERA_PIVOT, DEFAULT_CAMERA_RADIUS, POSE_DIM
from sfray.generators.base import GeneratorOutput, SampleSpecs
from sfray.geometry.camera_sampling import VERTICAL_LOOKAT, camera_labels_from_angles
from sfray.geometry.transform import head_to_world_matrix


@functools.lru_cache(maxsize=1)
def procedural_head():
    from sfray.head import build_head

    return build_head(HeadConfig(kind="procedural")).eval()


def camera_labels(yaw, pitch, fov_deg=18.837, pivot=DEFAULT_CAMERA_PIVOT,
                  radius: float = DEFAULT_CAMERA_RADIUS) -> torch.Tensor:
    """(B, 25) EG3D look-at labels: yaw > 0 moves the camera towards +x (the subject's left)."""
    yaw = torch.as_tensor(yaw, dtype=torch.float64).reshape(-1)
    pitch = torch.as_tensor(pitch, dtype=torch.float64).reshape(-1).expand_as(yaw)
    fov = torch.as_tensor(fov_deg, dtype=torch.float64).reshape(-1).expand_as(yaw)
    return camera_labels_from_angles(yaw, pitch, fov, vertical_mapping=VERTICAL_LOOKAT, radius=radius,
                                     pivot=tuple(pivot))


def make_specs(camera: torch.Tensor, shape=None, expression=None, pose=None, seed0: int = 0) -> SampleSpecs:
    head = procedural_head()
    b = camera.shape[0]
    z = lambda n: torch.zeros(b, n)  # noqa: E731
    return SampleSpecs(
        sample_id=torch.arange(b, dtype=torch.int64), seed=torch.arange(seed0, seed0 + b, dtype=torch.int64),
        latent=z(0), shape=z(head.n_shape) if shape is None else shape,
        expression=z(head.n_expression) if expression is None else expression,
        pose=z(POSE_DIM) if pose is None else pose, camera=camera, cond_camera=camera.clone(),
    )


def mesh_output(specs: SampleSpecs, resolution: int) -> GeneratorOutput:
    """A GeneratorOutput carrying only the geometry (blank image): what the annotator reads."""
    head = procedural_head()
    with torch.no_grad():
        h = head.forward(specs.shape, specs.expression, specs.pose)
    b = len(specs)
    return GeneratorOutput(
        image=torch.zeros(b, 3, resolution, resolution, dtype=torch.uint8),
        depth=torch.zeros(b, resolution, resolution), mask=torch.zeros(b, resolution, resolution),
        head_vertices=h.vertices, head_landmarks=h.landmarks, head_landmarks_fixed=h.landmarks_fixed,
        mesh_to_world=head_to_world_matrix(b), camera=specs.camera,
    )

"""The ``Generator`` protocol every image generator implements (procedural renderer, Next3D).

Everything downstream (annotator, quality gate, Ray actors, shards) sees only these types, so a
generator can be swapped by config. A generator renders from a batch of :class:`SampleSpecs` and
returns a :class:`GeneratorOutput` carrying, besides the image, exactly what the annotator needs:
the head mesh that drove it (head-model space) and the fixed transform from head-model space
into the generator's world, so image and annotation come from one geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

import torch

from sfray.head.layer import HeadModel


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


@dataclass
class GeneratorOutput:
    """What a generator returns for a batch of B specs (H = W = resolution)."""

    image: torch.Tensor  # (B, 3, H, W) uint8
    depth: torch.Tensor  # (B, Hd, Wd) float32 camera-space z of the generator's own geometry
    mask: torch.Tensor  # (B, Hd, Wd) float32 in [0, 1]: generator foreground / opacity
    head_vertices: torch.Tensor  # (B, V, 3) head-model space, the mesh that drove the generator
    head_landmarks: torch.Tensor  # (B, 68, 3) dynamic-contour landmarks, head-model space
    head_landmarks_fixed: torch.Tensor  # (B, 68, 3) fixed 3D landmarks, head-model space
    mesh_to_world: torch.Tensor  # (B, 4, 4) head-model space -> generator world (generator's own)
    camera: torch.Tensor  # (B, 25) the rendering camera label used
    extras: dict[str, Any] = field(default_factory=dict)  # generator-specific (e.g. image_raw)


@runtime_checkable
class Generator(Protocol):
    """An image generator driven by a head model and a camera."""

    #: Stable identity string written into every record and dataset.yaml
    #: (e.g. "procedural-v1" or "next3d:<sha256 of checkpoint>").
    identity: str
    resolution: int
    latent_dim: int
    head: HeadModel
    device: torch.device

    def generate(self, specs: SampleSpecs) -> GeneratorOutput:
        """Render a batch. Deterministic for the same specs on the same hardware."""
        ...

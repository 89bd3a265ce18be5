"""The ``Generator`` protocol every image generator implements (procedural renderer, Next3D).

Everything downstream (annotator, quality gate, Ray actors, shards) sees only these types, so a
generator can be swapped by config. A generator renders from a batch of :class:`SampleSpecs` and
returns a :class:`GeneratorOutput` carrying, besides the image, exactly what the annotator needs:
the head mesh that drove it (head-model space) and the fixed transform from head-model space
into the generator's world, so image and annotation come from one geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from sfray.conventions import DepthSource
from sfray.head.layer import HeadModel
from sfray.sampling.specs import SampleSpecs

__all__ = ["Generator", "GeneratorOutput", "SampleSpecs"]  # SampleSpecs lives in sfray.sampling


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
    depth_source: str = DepthSource.UNKNOWN  # what ``depth`` shows (a DepthSource value)


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

"""Normals, random lights and Lambertian + ambient (+ a little Blinn-Phong) shading.

Shading is what makes the head read as a 3D shape: a flat-coloured mesh looks like a sticker, and
a model trained on it would never see the shading cues real faces carry. Everything is in camera
space (OpenCV axes: x right, y down, z forward), so the viewer sits at the origin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sfray.generators.procedural.randomness import uniform


def stable_pow(base: torch.Tensor, exponent: float) -> torch.Tensor:
    """``base ** exponent`` whose bits do not depend on the intra-op thread count.

    A float32 ``pow`` over more than a few ten thousand elements is split across threads, and each
    chunk ends with a few elements computed by the scalar ``pow`` instead of the vectorized one;
    the two can differ in the last bit, so where the chunks end (i.e. the thread count) moved
    pixels (docs/reliability.md, "Record bytes and the thread count"). Evaluated in float64 and
    rounded once, the two paths' disagreement (one float64 ulp at most) survives the rounding only
    for a value within that ulp of a float32 rounding boundary, about one element in 2^28 of the
    few that land in a chunk's scalar tail.
    """
    return base.to(torch.float64).pow(exponent).to(base.dtype)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) unit normals: area-weighted mean of the faces' right-hand-rule normals.

    ``faces`` (F, 3) is wound so the right-hand rule points outwards (``HeadAssets``); a proper
    rotation (world -> camera) keeps that true, so camera-space normals face away from the head.
    """
    v0, v1, v2 = (vertices[:, faces[:, k]] for k in range(3))
    fn = torch.cross(v1 - v0, v2 - v0, dim=-1)  # length = 2 * area: area weighting for free
    n = torch.zeros_like(vertices)
    for k in range(3):
        n.index_add_(1, faces[:, k], fn)
    return F.normalize(n, dim=-1, eps=1e-12)


@dataclass
class Light:
    """One sample's lighting, camera space. ``direction`` points from the surface to the light."""

    direction: torch.Tensor  # (3,)
    color: torch.Tensor  # (3,) diffuse intensity per channel
    ambient: torch.Tensor  # (3,)
    specular: float
    shininess: float


def random_light(gen: torch.Generator) -> Light:
    """A key light from the camera's hemisphere (mostly above), a warm/cool tint, some ambient."""
    azimuth = math.radians(float(uniform(gen, -75.0, 75.0)))
    elevation = math.radians(float(uniform(gen, -25.0, 65.0)))  # positive = above the face
    d = torch.tensor([
        math.sin(azimuth) * math.cos(elevation),
        -math.sin(elevation),  # camera y points down
        -math.cos(azimuth) * math.cos(elevation),  # towards the camera
    ])
    tint = 1.0 + uniform(gen, -0.08, 0.08, (3,))
    strength = float(uniform(gen, 0.55, 0.95))
    ambient = float(uniform(gen, 0.25, 0.5))
    return Light(direction=F.normalize(d, dim=0), color=strength * tint,
                 ambient=ambient * (1.0 + uniform(gen, -0.05, 0.05, (3,))),
                 specular=float(uniform(gen, 0.03, 0.15)), shininess=float(uniform(gen, 12.0, 40.0)))


def shade(albedo: torch.Tensor, normals: torch.Tensor, points: torch.Tensor, light: Light,
          gloss: torch.Tensor | None = None) -> torch.Tensor:
    """Linear-light colour (N, 3) of N surface samples of one image.

    albedo (N, 3) linear; normals and points (N, 3) camera space; ``gloss`` (N, 1) scales the
    specular term (wet eyes and lips shine more than skin, hair less).
    """
    dev, dt = albedo.device, albedo.dtype
    ldir = light.direction.to(dev, dt)[None]
    lcol = light.color.to(dev, dt)[None]
    n = F.normalize(normals, dim=-1, eps=1e-12)
    view = F.normalize(-points, dim=-1, eps=1e-12)  # surface -> camera at the origin
    ndl = (n * ldir).sum(-1, keepdim=True).clamp_min(0.0)
    half = F.normalize(ldir + view, dim=-1, eps=1e-12)
    ndh = (n * half).sum(-1, keepdim=True).clamp_min(0.0)
    spec = light.specular * stable_pow(ndh, light.shininess) * (ndl > 0)
    if gloss is not None:
        spec = spec * gloss
    return albedo * (light.ambient.to(dev, dt)[None] + lcol * ndl) + lcol * spec

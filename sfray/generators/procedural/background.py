"""Random backgrounds behind the procedural head: solid, gradient or smooth colour noise.

Varied backgrounds keep a model trained on the procedural data from learning "face = the only
non-uniform thing in the picture". The kind is drawn per sample from
``generator.procedural.background`` (painters registered in ``registries.BACKGROUNDS``).
All draws happen on the CPU from the sample's own stream (bitwise reproducible); only the final
upsampling runs on the render device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from sfray.config.registries import BACKGROUNDS
from sfray.generators.procedural.randomness import choice, uniform


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Scalars (or broadcastable tensors) in [0, 1] -> (..., 3) RGB in [0, 1]."""
    k = torch.stack([torch.as_tensor(5.0), torch.as_tensor(3.0), torch.as_tensor(1.0)])
    hk = (k + h.unsqueeze(-1) * 6.0) % 6.0
    return v.unsqueeze(-1) - v.unsqueeze(-1) * s.unsqueeze(-1) * torch.clamp(torch.minimum(hk, 4.0 - hk), 0.0, 1.0)


def random_color(gen: torch.Generator) -> torch.Tensor:
    """(3,) a plausible backdrop colour: any hue, mostly muted, any brightness."""
    h = uniform(gen)
    s = uniform(gen) ** 1.5 * 0.8
    v = uniform(gen, 0.12, 0.95)
    return _hsv_to_rgb(h, s, v)


@BACKGROUNDS.register("solid")
def _solid(gen: torch.Generator, size: tuple[int, int]) -> torch.Tensor:
    return random_color(gen).reshape(3, 1, 1).expand(3, *size).clone()


@BACKGROUNDS.register("gradient")
def _gradient(gen: torch.Generator, size: tuple[int, int]) -> torch.Tensor:
    h, w = size
    c0, c1 = random_color(gen), random_color(gen)
    angle = float(uniform(gen, 0.0, 2.0 * math.pi))
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h - 0.5
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w - 0.5
    t = math.cos(angle) * xs[None, :] + math.sin(angle) * ys[:, None]
    t = (t - t.min()) / (t.max() - t.min()).clamp_min(1e-6)
    return c0[:, None, None] * (1.0 - t) + c1[:, None, None] * t


@BACKGROUNDS.register("noise")
def _noise(gen: torch.Generator, size: tuple[int, int]) -> torch.Tensor:
    """Two octaves of bicubic-upsampled noise around a random base colour, mostly in brightness
    with a little hue drift (blurry indoor/outdoor clutter rather than a rainbow)."""
    base = random_color(gen)
    out = base.reshape(3, 1, 1).expand(3, *size).clone()
    amp = float(uniform(gen, 0.08, 0.25))
    tint = random_color(gen) - base
    for cells in (int(choice(gen, 5)) + 2, int(choice(gen, 10)) + 8):
        lum = torch.randn((1, 1, cells, cells), generator=gen)
        hue = torch.randn((1, 1, cells, cells), generator=gen)
        grid = amp * lum.expand(1, 3, cells, cells) + 0.5 * amp * hue * tint.view(1, 3, 1, 1)
        out = out + F.interpolate(grid, size=size, mode="bicubic", align_corners=False)[0]
        amp *= 0.45
    return out.clamp(0.0, 1.0)


def make_background(gen: torch.Generator, kinds: Sequence[str], size: tuple[int, int]) -> torch.Tensor:
    """(3, H, W) float32 in [0, 1] on the CPU; the kind is drawn uniformly from ``kinds``."""
    if not kinds:
        raise ValueError(f"generator.procedural.background needs at least one of {BACKGROUNDS.describe()}")
    kind = kinds[choice(gen, len(kinds))]
    return BACKGROUNDS.get(kind)(gen, size)

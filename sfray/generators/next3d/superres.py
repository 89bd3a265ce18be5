"""SuperresolutionHybrid8XDC: two StyleGAN2 blocks lifting the 128² feature image to 512² (docs/next3d.md §2.15).

Both blocks run with conv_clamp 256 (the released blocks are fp16 on CUDA; the clamp also applies
in this fp32 re-implementation) and no noise. Only the last w of the static half drives them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sfray.generators.next3d.stylegan2 import SynthesisBlock


class SuperresolutionHybrid8XDC(nn.Module):
    """rgb (B, 3, r, r), x (B, C, r, r), ws (B, n, W) -> image (B, 3, 4·in, 4·in)."""

    def __init__(self, channels: int, img_resolution: int, w_dim: int, sr_channels: tuple[int, int] = (256, 128),
                 input_resolution: int = 128, img_channels: int = 3, conv_clamp: float | None = 256.0,
                 sr_antialias: bool = True):
        super().__init__()
        self.input_resolution, self.sr_antialias = input_resolution, sr_antialias
        c0, c1 = sr_channels
        self.block0 = SynthesisBlock(channels, c0, w_dim, 2 * input_resolution, img_channels, conv_clamp=conv_clamp)
        self.block1 = SynthesisBlock(c0, c1, w_dim, img_resolution, img_channels, conv_clamp=conv_clamp)

    def forward(self, rgb: torch.Tensor, x: torch.Tensor, ws: torch.Tensor, noise_mode: str = "none",
                rng: list[torch.Generator] | None = None) -> torch.Tensor:
        ws = ws[:, -1:, :].repeat(1, 3, 1)
        if x.shape[-1] != self.input_resolution:
            size = (self.input_resolution, self.input_resolution)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=self.sr_antialias)
            rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=self.sr_antialias)
        x, rgb = self.block0(x, rgb, ws, noise_mode=noise_mode, rng=rng)
        x, rgb = self.block1(x, rgb, ws, noise_mode=noise_mode, rng=rng)
        return rgb

"""UNet: the encoder that makes the shared features f_s, and the segmentation and depth heads.

The classic bilinear UNet (two 3x3 convs per level, max-pool down, bilinear up + skip concat),
with ``base`` channels at full resolution doubling per level for ``depth`` levels. The paper's
encoder is UNet(3 -> 64) with base 64 and 4 levels; its heads are full UNets on the 64 feature
channels. Normalisation is GroupNorm, not BatchNorm, so a step's result does not depend on how a
global batch is split over workers (docs/training.md, model).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups (the largest divisor of ``channels`` not above 8)."""
    groups = max(g for g in range(1, 9) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class DoubleConv(nn.Sequential):
    """(3x3 conv -> norm -> ReLU) x 2."""

    def __init__(self, cin: int, cout: int, mid: int | None = None):
        mid = mid or cout
        super().__init__(
            nn.Conv2d(cin, mid, 3, padding=1, bias=False), group_norm(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 3, padding=1, bias=False), group_norm(cout), nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Bilinear x2, pad to the skip's size, concatenate, DoubleConv."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = DoubleConv(cin, cout, cin // 2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """``(B, in_ch, H, W) -> (B, out_ch, H, W)``; H and W must be divisible by ``2**depth``."""

    def __init__(self, in_ch: int, out_ch: int, base: int = 64, depth: int = 4):
        super().__init__()
        if depth < 1 or base < 1:
            raise ValueError(f"UNet needs depth >= 1 and base >= 1, got depth={depth} base={base}")
        self.depth = depth
        chans = [base * 2**i for i in range(depth + 1)]
        chans[-1] //= 2  # bilinear UNet: the bottom level keeps the channels of the level above
        self.inc = DoubleConv(in_ch, chans[0])
        self.downs = nn.ModuleList(DoubleConv(chans[i], chans[i + 1]) for i in range(depth))
        ups, cur = [], chans[depth]
        for i in range(depth, 0, -1):  # up from level i to level i - 1
            out = chans[i - 1] // 2 if i > 1 else chans[0]
            ups.append(Up(cur + chans[i - 1], out))
            cur = out
        self.ups = nn.ModuleList(ups)
        self.outc = nn.Conv2d(chans[0], out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return self.outc(y)

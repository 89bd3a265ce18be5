"""Keypoint head: two strided convs to 1/4 resolution, a stack of hourglasses, 68 heatmaps.

Each stack predicts heatmaps (used for intermediate supervision) and feeds them back into the
next stack, as in the stacked-hourglass design. Coordinates come from a soft-argmax of the last
stack's heatmaps: the expectation of the heatmap cell centres under ``softmax(beta * h)``, in
the *input* image's pixel frame (corner convention: a cell ``j`` covers input pixels
``[j * stride, (j + 1) * stride)``, its centre is at ``(j + 0.5) * stride``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sfray.models.unet import group_norm


class Residual(nn.Module):
    """Pre-activation bottleneck residual block (norm-ReLU-conv x 3) with a 1x1 skip when needed."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = max(cout // 2, 1)
        self.body = nn.Sequential(
            group_norm(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, mid, 1, bias=False),
            group_norm(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            group_norm(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 1),
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class Hourglass(nn.Module):
    """Recursive hourglass of ``depth`` levels at ``channels`` (input side divisible by 2**depth)."""

    def __init__(self, depth: int, channels: int):
        super().__init__()
        self.up = Residual(channels, channels)
        self.low1 = Residual(channels, channels)
        self.low2 = Hourglass(depth - 1, channels) if depth > 1 else Residual(channels, channels)
        self.low3 = Residual(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return self.up(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


def coord_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) normalised x and y of each pixel centre, in [-1, 1] (CoordConv)."""
    b, _, h, w = x.shape
    ys = (torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy]).expand(b, 2, h, w)


class KeypointHead(nn.Module):
    """``(B, in_ch, H, W) -> [(B, K, H/4, W/4)] * stacks`` heatmaps."""

    stride = 4

    def __init__(self, in_ch: int, channels: int, num_points: int, stacks: int = 2, depth: int = 4,
                 add_coord: bool = False):
        super().__init__()
        self.add_coord = add_coord
        stem_in = in_ch + (2 if add_coord else 0)
        self.stem = nn.Sequential(
            nn.Conv2d(stem_in, channels // 2, 3, stride=2, padding=1, bias=False), group_norm(channels // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // 2, channels, 3, stride=2, padding=1, bias=False), group_norm(channels),
            nn.ReLU(inplace=True),
        )
        self.hourglasses = nn.ModuleList(Hourglass(depth, channels) for _ in range(stacks))
        self.features = nn.ModuleList(
            nn.Sequential(Residual(channels, channels), nn.Conv2d(channels, channels, 1, bias=False),
                          group_norm(channels), nn.ReLU(inplace=True)) for _ in range(stacks))
        self.heads = nn.ModuleList(nn.Conv2d(channels, num_points, 1) for _ in range(stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(stacks - 1))
        self.merge_heatmaps = nn.ModuleList(nn.Conv2d(num_points, channels, 1) for _ in range(stacks - 1))

    def forward(self, features: torch.Tensor) -> list[torch.Tensor]:
        x = torch.cat([features, coord_channels(features)], 1) if self.add_coord else features
        x = self.stem(x)
        heatmaps = []
        for i, (hg, feat, head) in enumerate(zip(self.hourglasses, self.features, self.heads)):
            y = feat(hg(x))
            h = head(y)
            heatmaps.append(h)
            if i < len(self.merge_features):
                x = x + self.merge_features[i](y) + self.merge_heatmaps[i](h)
        return heatmaps


def soft_argmax(heatmaps: torch.Tensor, beta: float, stride: float) -> torch.Tensor:
    """(B, K, h, w) heatmaps -> (B, K, 2) expected (x, y) in input pixels (see module docstring)."""
    b, k, h, w = heatmaps.shape
    prob = torch.softmax(heatmaps.float().reshape(b, k, h * w) * beta, dim=-1).reshape(b, k, h, w)
    xs = (torch.arange(w, device=heatmaps.device, dtype=torch.float32) + 0.5) * stride
    ys = (torch.arange(h, device=heatmaps.device, dtype=torch.float32) + 0.5) * stride
    x = (prob.sum(dim=2) * xs).sum(dim=-1)
    y = (prob.sum(dim=3) * ys).sum(dim=-1)
    return torch.stack([x, y], dim=-1)

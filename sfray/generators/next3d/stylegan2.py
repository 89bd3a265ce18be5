"""StyleGAN2 mapping and 'skip'-architecture synthesis networks (docs/next3d.md §2.2, §2.3, §6.1).

Next3D holds four of these generators (texture, mouth, static tri-plane, neural blending); only the
static backbone's mapping is used at inference. A block at level k (b4 = 0) consumes
``ws[2k-1 .. 2k+1]`` (b4: ws[0], ws[1]): the to-RGB w of one block is the conv0 w of the next.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sfray.generators.next3d.fastops import upsample2d_fast
from sfray.generators.next3d.layers import (
    FastPathMixin,
    FullyConnectedLayer,
    SynthesisLayer,
    ToRGBLayer,
    normalize_2nd_moment,
)
from sfray.generators.next3d.upfirdn import binomial_filter, upsample2d


class MappingNetwork(nn.Module):
    """z (B, Z), c (B, C) -> ws (B, num_ws, W): normalised z ++ normalised embed(c), lrelu MLP, broadcast."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 2,
                 lr_multiplier: float = 0.01):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, c_dim, w_dim, num_ws, num_layers
        self.register_buffer("w_avg", torch.zeros([w_dim]))
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, w_dim)
        feats = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        for idx in range(num_layers):
            layer = FullyConnectedLayer(feats[idx], feats[idx + 1], activation="lrelu", lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        with torch.autocast(device_type=z.device.type, enabled=False):  # ws stay float32 under autocast
            return self._forward(z, c, truncation_psi, truncation_cutoff)

    def _forward(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float,
                 truncation_cutoff: int | None) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cut = self.num_ws if truncation_cutoff is None else min(int(truncation_cutoff), self.num_ws)
            head = self.w_avg.lerp(ws[:, :cut], truncation_psi)
            ws = torch.cat([head, ws[:, cut:]], dim=1)
        return ws


class SynthesisBlock(FastPathMixin, nn.Module):
    """One resolution of the skip generator: [const | conv0 (x2 up)], conv1, to-RGB added to upsampled img."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 conv_clamp: float | None = None, use_noise: bool = True):
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        self.register_buffer("resample_filter", binomial_filter())
        if in_channels != 0:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        conv_clamp=conv_clamp, use_noise=use_noise)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution,
                                    conv_clamp=conv_clamp, use_noise=use_noise)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: str = "const", rng: list[torch.Generator] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """ws: (B, num_conv + 1, W). Returns (x (B, out, R, R), img (B, img_channels, R, R) float32)."""
        w_iter = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, rng=rng)
        x = self.conv1(x, next(w_iter), noise_mode=noise_mode, rng=rng)
        if img is not None:
            img = upsample2d_fast(img, self.fir_taps) if self.fir_taps else upsample2d(img, self.resample_filter)
        y = self.torgb(x, next(w_iter)).to(torch.float32)
        img = y if img is None else img + y
        return x, img


def block_resolutions(resolution: int) -> list[int]:
    return [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]


def split_ws(ws: torch.Tensor, blocks: list[SynthesisBlock]) -> list[torch.Tensor]:
    """Per-block slices of ws (B, num_ws, W): consecutive blocks share one w (to-RGB / next conv0)."""
    out, idx = [], 0
    for block in blocks:
        out.append(ws.narrow(1, idx, block.num_conv + block.num_torgb))
        idx += block.num_conv
    return out


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, W) -> image (B, img_channels, R, R) through blocks b4 ... bR."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int,
                 channel_max: int, conv_clamp: float | None = None):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = block_resolutions(img_resolution)
        ch = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        self.channels = ch
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = ch[res // 2] if res > 4 else 0
            block = SynthesisBlock(in_ch, ch[res], w_dim, res, img_channels, conv_clamp=conv_clamp)
            self.num_ws += block.num_conv
            setattr(self, f"b{res}", block)
        self.num_ws += 1  # the last to-RGB

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(self, ws: torch.Tensor, noise_mode: str = "const",
                rng: list[torch.Generator] | None = None) -> torch.Tensor:
        x = img = None
        for block, block_ws in zip(self.blocks(), split_ws(ws, self.blocks())):
            x, img = block(x, img, block_ws, noise_mode=noise_mode, rng=rng)
        return img


class StyleGAN2Generator(nn.Module):
    """``synthesis`` + ``mapping`` under the released attribute names (mapping registered second)."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 channel_base: int, channel_max: int, mapping_layers: int = 2, mapping_num_ws: int | None = None):
        super().__init__()
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, channel_base, channel_max)
        num_ws = self.synthesis.num_ws if mapping_num_ws is None else mapping_num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, num_ws, num_layers=mapping_layers)

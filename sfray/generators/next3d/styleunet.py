"""Conditional StyleGAN2 ("StyleUNet") for the mouth and the neural blending (docs/next3d.md §2.6, §2.7, §2.17).

A full 256² skip generator whose low-resolution blocks are replaced by an encoder of a 32-channel
conditioning image: encoder outputs are fused into the decoder's feature maps while their
resolution is below the conditioning resolution. Unused parts (b4.., the last fusion conv, the
mapping) are kept so that the released state dict loads by name.
"""

from __future__ import annotations

import torch
from torch import nn

from sfray.generators.next3d.fastops import downsample2d_fast
from sfray.generators.next3d.layers import Conv2dLayer, FastPathMixin
from sfray.generators.next3d.stylegan2 import MappingNetwork, SynthesisNetwork, split_ws
from sfray.generators.next3d.upfirdn import binomial_filter, downsample2d


class EncoderResBlock(FastPathMixin, nn.Module):
    """img -> [/2 FIR] -> fromrgb (1x1, no bias) [+ previous features] -> conv1 3x3 -> conv2 3x3 /2."""

    def __init__(self, in_channels: int, out_channels: int, cond_channels: int, downsample_input: bool):
        super().__init__()
        self.downsample_input = downsample_input
        self.register_buffer("resample_filter", binomial_filter())
        self.fromrgb = Conv2dLayer(cond_channels, in_channels, kernel_size=1, bias=False, activation="linear")
        self.conv1 = Conv2dLayer(in_channels, in_channels, kernel_size=3, activation="lrelu")
        self.conv2 = Conv2dLayer(in_channels, out_channels, kernel_size=3, activation="lrelu", down=2)

    def forward(self, img: torch.Tensor, x: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (the image at this block's resolution, features at half of it)."""
        if self.downsample_input:
            img = downsample2d_fast(img, self.fir_taps) if self.fir_taps else downsample2d(img, self.resample_filter)
        y = self.fromrgb(img)
        x = y if x is None else x + y
        x = self.conv2(self.conv1(x))
        return img, x


class StyleUNetSynthesis(SynthesisNetwork):
    """cond (B, cond_ch, in_size, in_size), ws (B, num_ws, W) -> (B, img_channels, R, R)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int,
                 channel_max: int, in_size: int, final_size: int, cond_channels: int):
        super().__init__(w_dim, img_resolution, img_channels, channel_base, channel_max)
        self.in_size, self.final_size, self.num_cond_res = in_size, final_size, in_size
        ch = lambda r: min(channel_base // r, channel_max)  # noqa: E731
        enc_res = []
        r = in_size
        while r > final_size:
            enc_res.append(r)
            r //= 2
        self.encoder = nn.ModuleList(
            EncoderResBlock(ch(r), ch(r // 2), cond_channels, downsample_input=(i > 0))
            for i, r in enumerate(enc_res)
        )
        fusion = []
        for k in range(len(enc_res) + 1):
            res = final_size * 2 ** k
            in_ch = ch(res) if k == 0 else 2 * ch(res)
            fusion.append(Conv2dLayer(in_ch, ch(res), kernel_size=3, activation="linear"))
        self.fusion = nn.ModuleList(fusion)

    def forward(self, cond: torch.Tensor, ws: torch.Tensor, noise_mode: str = "const",  # type: ignore[override]
                rng: list[torch.Generator] | None = None) -> torch.Tensor:
        img, x = cond, None
        feats = []
        for block in self.encoder:
            img, x = block(img, x)
            feats.append(x)
        feats = feats[::-1]  # lowest resolution (final_size) first
        x = img = None
        k = 0
        for block, block_ws in zip(self.blocks(), split_ws(ws, self.blocks())):
            if block.resolution < 2 * self.final_size:
                continue
            in_res = block.resolution // 2
            if k == 0:
                x = self.fusion[0](feats[0])
            elif in_res < self.num_cond_res:
                x = self.fusion[k](torch.cat([x, feats[k]], dim=1))
            x, img = block(x, img, block_ws, noise_mode=noise_mode, rng=rng)
            k += 1
        return img


class StyleUNetGenerator(nn.Module):
    """``synthesis`` (StyleUNet) + an unused ``mapping`` under the released attribute names."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 channel_base: int, channel_max: int, in_size: int, final_size: int, cond_channels: int,
                 mapping_layers: int = 2):
        super().__init__()
        self.synthesis = StyleUNetSynthesis(w_dim, img_resolution, img_channels, channel_base, channel_max,
                                            in_size, final_size, cond_channels)
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.synthesis.num_ws, num_layers=mapping_layers)

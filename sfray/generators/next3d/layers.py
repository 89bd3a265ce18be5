"""StyleGAN2 building blocks with equalised learning rate (docs/next3d.md §6.1).

Weights are stored unscaled (as in the checkpoints) and multiplied by their "weight gain" at run
time; parameter and buffer names, shapes and registration order follow the released modules so a
state dict loads by name. Modulated convolutions run per sample through one grouped convolution.

Every layer has a reference path (the released ops) and a fast path (``fastops.py``: split
modulated conv, fused epilogue, separable FIR, optional channels-last), switched per module by
the attributes of :class:`FastPathMixin`, which ``perf.apply_fast_paths`` sets.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sfray.generators.next3d.fastops import act_inplace, conv2d_resample_fast, modulated_conv2d_fast
from sfray.generators.next3d.upfirdn import binomial_filter, conv2d_resample

LRELU_SLOPE = 0.2
ACT_GAIN = {"linear": 1.0, "lrelu": math.sqrt(2.0)}
NOISE_MODES = ("const", "random", "none")


def bias_act(x: torch.Tensor, b: torch.Tensor | None, act: str = "linear", gain: float | None = None,
             clamp: float | None = None, dim: int = 1) -> torch.Tensor:
    """x + b (broadcast along ``dim``), activation, times gain (default: the activation's), clamp ±clamp."""
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.to(x.dtype).reshape(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
    elif act != "linear":
        raise ValueError(f"unknown activation {act!r}")
    g = ACT_GAIN[act] if gain is None else gain
    if g != 1:
        x = x * g
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean(x²) + eps) over the feature dimension (z and the camera embedding)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class FastPathMixin:
    """Per-module switches of the fast path (class defaults = the reference path)."""

    fast: bool = False  # fastops: split modulated conv, fused epilogue, separable FIR
    channels_last: bool = False  # keep activations in channels-last memory format
    fir_taps: tuple | None = None  # separable taps of ``resample_filter`` (None: depthwise reference FIR)


class FullyConnectedLayer(FastPathMixin, nn.Module):
    """y = act(x · (W·lr/√in)ᵀ + b·lr). Stored W = randn/lr so that lr scales the learning rate only."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast:  # one addmm with the activation gain folded in, activation in place
            g = ACT_GAIN[self.activation]
            w = self.weight.to(x.dtype) * (self.weight_gain * g)
            if self.bias is None:
                return act_inplace(x.matmul(w.t()), self.activation, None)
            return act_inplace(torch.addmm(self.bias.to(x.dtype) * (self.bias_gain * g), x, w.t()), self.activation, None)
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        x = x.matmul(w.t())
        return bias_act(x, b, self.activation)


class Conv2dLayer(FastPathMixin, nn.Module):
    """Plain conv with weight gain 1/√(in·k²), optional x2 up/down (EncoderResBlock, fusion convs)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1, conv_clamp: float | None = None):
        super().__init__()
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        self.register_buffer("resample_filter", binomial_filter())
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        if self.fast:  # gains folded into weight and bias, bias added by the convolution
            g = ACT_GAIN[self.activation] * gain
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            w = self.weight.to(x.dtype) * (self.weight_gain * g)
            b = None if self.bias is None else self.bias.to(x.dtype) * g
            y = conv2d_resample_fast(x, w, self.fir_taps, self.resample_filter, up=self.up, down=self.down,
                                     padding=self.padding, bias=b)
            return act_inplace(y, self.activation, clamp)
        w = self.weight.to(x.dtype) * self.weight_gain
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding)
        return bias_act(x, self.bias, self.activation, gain=ACT_GAIN[self.activation] * gain, clamp=clamp)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *,
                     demodulate: bool = True, noise: torch.Tensor | None = None, up: int = 1,
                     padding: int = 0, resample_filter: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample modulated convolution as one grouped conv (the "fused" path; docs/next3d.md §6.1).

    x: (B, I, H, W); weight: (O, I, k, k); styles: (B, I). W'_b = W·s_b, optionally demodulated so
    that Σ_{i,k} W'² = 1 per output channel. ``noise`` (B or 1, 1, H', W') is added after the conv.
    """
    b = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    w = weight.unsqueeze(0) * styles.reshape(b, 1, in_ch, 1, 1)  # (B, O, I, k, k)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        w = w * dcoefs.reshape(b, out_ch, 1, 1, 1)
    x = x.reshape(1, b * in_ch, *x.shape[2:])
    w = w.reshape(b * out_ch, in_ch, kh, kw).to(x.dtype)
    x = conv2d_resample(x, w, resample_filter, up=up, padding=padding, groups=b)
    x = x.reshape(b, out_ch, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


class SynthesisLayer(FastPathMixin, nn.Module):
    """Modulated 3x3 conv (+x2 up for conv0) + noise + bias + lrelu·√2 (+clamp)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 kernel_size: int = 3, up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 conv_clamp: float | None = None):
        super().__init__()
        self.resolution, self.up, self.activation, self.conv_clamp = resolution, up, activation, conv_clamp
        self.padding = kernel_size // 2
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.use_noise = use_noise
        if use_noise:
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("resample_filter", binomial_filter())
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const",
                rng: list[torch.Generator] | None = None, gain: float = 1.0) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            shape = (x.shape[0], 1, self.resolution, self.resolution)
            noise = random_normal(shape, rng, x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        if self.fast:
            return modulated_conv2d_fast(
                x, self.weight, styles, demodulate=True, up=self.up, padding=self.padding, taps=self.fir_taps,
                f=self.resample_filter, bias=self.bias, noise=noise, activation=self.activation,
                gain=ACT_GAIN[self.activation] * gain, clamp=clamp, channels_last=self.channels_last)
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter)
        return bias_act(x, self.bias, self.activation, gain=ACT_GAIN[self.activation] * gain, clamp=clamp)


class ToRGBLayer(FastPathMixin, nn.Module):
    """1x1 modulated conv without demodulation (styles scaled by 1/√in), bias, linear, clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        if self.fast:
            return modulated_conv2d_fast(
                x, self.weight, styles, demodulate=False, up=1, padding=0, taps=None, f=None, bias=self.bias,
                noise=None, activation="linear", gain=1.0, clamp=self.conv_clamp, channels_last=self.channels_last)
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, "linear", clamp=self.conv_clamp)


def random_normal(shape: tuple[int, ...], rng: list[torch.Generator] | None,
                  device: torch.device) -> torch.Tensor:
    """N(0,1) of ``shape`` (B, ...); row b drawn from ``rng[b]`` when per-sample generators are given."""
    if rng is None:
        return torch.randn(shape, device=device)
    return torch.stack([torch.randn(shape[1:], generator=g, device=g.device) for g in rng]).to(device)


def random_uniform(shape: tuple[int, ...], rng: list[torch.Generator] | None,
                   device: torch.device) -> torch.Tensor:
    """U[0,1) of ``shape`` (B, ...); row b drawn from ``rng[b]`` when per-sample generators are given."""
    if rng is None:
        return torch.rand(shape, device=device)
    return torch.stack([torch.rand(shape[1:], generator=g, device=g.device) for g in rng]).to(device)


def seeded_generators(seeds: torch.Tensor | np.ndarray | list[int], device: torch.device | str) -> list[torch.Generator]:
    """One torch.Generator per sample, so a sample's random draws do not depend on its batch."""
    out = []
    for s in np.asarray(torch.as_tensor(seeds).cpu()).reshape(-1).tolist():
        g = torch.Generator(device=device)
        g.manual_seed(int(s) & 0x7FFF_FFFF_FFFF_FFFF)
        out.append(g)
    return out

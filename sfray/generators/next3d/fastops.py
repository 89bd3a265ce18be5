"""Fast forms of the StyleGAN2 ops the Next3D networks spend their time in (GPU first, exact math).

The reference ops (``upfirdn.py``, ``layers.bias_act``, the fused grouped modulated conv) mirror the
released code path; these compute the same functions with fewer, friendlier kernels:

* **Separable FIR** (:func:`upfirdn2d_separable`): the 4x4 binomial filter is an outer product, so
  resampling runs as two 1-D passes of shifted-slice sums (polyphase for x2 upsampling: the zero
  samples are never multiplied) instead of a depthwise 2-D convolution over a zero-stuffed
  image. Elementwise only: ``torch.compile`` fuses each pass into one kernel.
* **Split modulated conv** (:func:`modulated_conv2d_fast`): x·s -> one dense convolution with
  the shared weight -> ·d, instead of a grouped convolution with per-sample weights: cuDNN
  runs it as a plain (channels-last, tensor-core) convolution for any batch size.
* **Fused epilogue**: demodulation and activation gain become one per-(sample, channel) scale,
  bias and noise one offset (the gain moves inside the leaky ReLU, which is positively
  homogeneous); scale, offset, activation and clamp run in place on the convolution's output:
  3-4 passes instead of 6 in eager mode, one kernel under ``torch.compile``.

All are exact reformulations; they change float rounding only (see docs/next3d.md for the
tolerances the tests hold them to).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sfray.generators.next3d.upfirdn import conv2d_resample

Taps = tuple[float, ...]
LRELU_SLOPE = 0.2


def separable_taps(f: torch.Tensor, rtol: float = 1e-6) -> tuple[Taps, Taps] | None:
    """(row taps, column taps) with outer(row, col) == f for a rank-1 2-D filter, else None."""
    f64 = f.detach().double().cpu()
    if f64.dim() != 2:
        return None
    total = f64.sum()
    if total == 0:
        return None
    row, col = f64.sum(1), f64.sum(0) / total
    if not torch.allclose(torch.outer(row, col), f64, rtol=rtol, atol=rtol * float(f64.abs().max())):
        return None
    return tuple(float(v) for v in row), tuple(float(v) for v in col)


def _pad_dim(x: torch.Tensor, dim: int, lo: int, hi: int) -> torch.Tensor:
    """Zero-pad (positive) or crop (negative) ``x`` along ``dim`` (-1 or -2)."""
    n = x.shape[dim]
    x = x.narrow(dim, max(-lo, 0), n - max(-lo, 0) - max(-hi, 0))
    lo, hi = max(lo, 0), max(hi, 0)
    if lo or hi:
        pads = (lo, hi) if dim == -1 else (0, 0, lo, hi)
        x = F.pad(x, pads)
    return x


def _weighted_sum(slices: list[torch.Tensor], coefs: list[float]) -> torch.Tensor:
    acc = slices[0] * coefs[0]
    for s, c in zip(slices[1:], coefs[1:]):
        acc.add_(s, alpha=c)
    return acc


def fir1d(x: torch.Tensor, taps: Taps, dim: int, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0),
          gain: float = 1.0) -> torch.Tensor:
    """1-D upfirdn along ``dim`` (-1 or -2): zero-insert by ``up``, pad, true convolution with
    ``taps`` times ``gain``, keep every ``down``-th sample (``up`` and ``down`` not both > 1)."""
    g = [t * gain for t in reversed(taps)]  # correlation taps of the convolution
    length = len(g)
    p0, p1 = pad
    if up == 1:
        z = _pad_dim(x, dim, p0, p1)
        m = z.shape[dim] - length + 1
        count = (m + down - 1) // down
        idx = [slice(None)] * x.dim()
        slices = []
        for t in range(length):
            idx[dim] = slice(t, t + down * (count - 1) + 1, down)
            slices.append(z[tuple(idx)])
        return _weighted_sum(slices, g)
    n = x.shape[dim]
    m = n * up + p0 + p1 - length + 1
    shape = list(x.shape)
    shape[dim] = m
    fmt = torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous() else torch.contiguous_format
    out = None
    idx = [slice(None)] * x.dim()
    for r in range(min(up, m)):  # output up*j + r receives the taps t with (r + t - p0) % up == 0
        count = (m - r + up - 1) // up
        ts = [t for t in range(length) if (r + t - p0) % up == 0]
        offs = [(r + t - p0) // up for t in ts]
        lo = max(0, -min(offs))
        hi = max(0, max(offs) + count - n)
        z = _pad_dim(x, dim, lo, hi)
        phase = _weighted_sum([z.narrow(dim, o + lo, count) for o in offs], [g[t] for t in ts])
        if out is None:
            out = torch.empty(shape, dtype=phase.dtype, device=x.device, memory_format=fmt)
        idx[dim] = slice(r, None, up)
        out[tuple(idx)] = phase
    return out


def upfirdn2d_separable(x: torch.Tensor, taps: tuple[Taps, Taps], up: int = 1, down: int = 1,
                        pad: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """``upfirdn.upfirdn2d`` for a separable filter outer(taps[0], taps[1]) as two 1-D passes."""
    x0, x1, y0, y1 = pad
    x = fir1d(x, taps[1], -1, up, down, (x0, x1), gain)
    return fir1d(x, taps[0], -2, up, down, (y0, y1))


def upsample2d_fast(x: torch.Tensor, taps: tuple[Taps, Taps], up: int = 2) -> torch.Tensor:
    """``upfirdn.upsample2d`` through :func:`upfirdn2d_separable` (same pads and gain)."""
    fw = len(taps[1])
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d_separable(x, taps, up=up, pad=(p0, p1, p0, p1), gain=up * up)


def downsample2d_fast(x: torch.Tensor, taps: tuple[Taps, Taps], down: int = 2) -> torch.Tensor:
    """``upfirdn.downsample2d`` through :func:`upfirdn2d_separable` (same pads)."""
    fw = len(taps[1])
    p0, p1 = (fw - down + 1) // 2, (fw - down) // 2
    return upfirdn2d_separable(x, taps, down=down, pad=(p0, p1, p0, p1))


def conv2d_resample_fast(x: torch.Tensor, w: torch.Tensor, taps: tuple[Taps, Taps] | None, f: torch.Tensor | None,
                         up: int = 1, down: int = 1, padding: int = 0, bias: torch.Tensor | None = None
                         ) -> torch.Tensor:
    """``upfirdn.conv2d_resample`` (groups 1) with the FIR as separable passes; ``bias`` is added by
    the convolution itself when no FIR follows it."""
    if taps is None:
        y = conv2d_resample(x, w, f, up=up, down=down, padding=padding)
        return y if bias is None else y + bias.reshape(1, -1, 1, 1)
    kh, kw = w.shape[-2:]
    fw = len(taps[1])
    if up == 1 and down == 1:
        return F.conv2d(x, w, bias, padding=padding)
    if down > 1:
        p0, p1 = padding + (fw - down + 1) // 2, padding + (fw - down) // 2
        if kw == 1 and kh == 1:
            return F.conv2d(upfirdn2d_separable(x, taps, down=down, pad=(p0, p1, p0, p1)), w, bias)
        return F.conv2d(upfirdn2d_separable(x, taps, pad=(p0, p1, p0, p1)), w, bias, stride=down)
    p0 = padding + (fw + up - 1) // 2 - (kw - 1)
    p1 = padding + (fw - up) // 2 - (kw - up)
    pt = max(min(-p0, -p1), 0)
    y = F.conv_transpose2d(x, w.transpose(0, 1), stride=up, padding=pt)
    y = upfirdn2d_separable(y, taps, pad=(p0 + pt, p1 + pt, p0 + pt, p1 + pt), gain=up * up)
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)


def act_inplace(y: torch.Tensor, activation: str, clamp: float | None) -> torch.Tensor:
    """Leaky ReLU (gain already folded in) and clamp, in place on a freshly computed tensor."""
    if activation == "lrelu":
        y = F.leaky_relu_(y, LRELU_SLOPE)
    elif activation != "linear":
        raise ValueError(f"unknown activation {activation!r}")
    if clamp is not None and clamp >= 0:
        y = y.clamp_(-clamp, clamp)
    return y


def modulated_conv2d_fast(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool,
                          up: int, padding: int, taps: tuple[Taps, Taps] | None, f: torch.Tensor | None,
                          bias: torch.Tensor, noise: torch.Tensor | None, activation: str, gain: float,
                          clamp: float | None, channels_last: bool = False) -> torch.Tensor:
    """act(conv(x, W·s·d) + noise + bias)·gain, clamped: the split form with a fused epilogue.

    x (B, I, H, W); weight (O, I, k, k); styles (B, I); noise broadcastable to the output; ``gain``
    the activation gain times the layer's call gain (> 0). Demodulation d_o = (Σ_i s_i² Σ_k W²_oik
    + 1e-8)^-1/2 is computed as one small matmul.
    """
    b = x.shape[0]
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    acc = torch.promote_types(torch.promote_types(weight.dtype, styles.dtype), torch.float32)  # >= fp32
    if demodulate:
        wsq = weight.to(acc).square().sum(dim=(2, 3))  # (O, I)
        scale = (styles.to(acc).square() @ wsq.t() + 1e-8).rsqrt() * gain  # (B, O)
    else:
        scale = torch.full((b, weight.shape[0]), float(gain), dtype=acc, device=x.device)
    xs = x * styles.to(x.dtype).reshape(b, -1, 1, 1)
    y = conv2d_resample_fast(xs, weight.to(x.dtype), taps, f, up=up, padding=padding)
    dt = y.dtype  # differs from x's under autocast
    # y·scale + (bias + noise)·gain, then the activation, all in place on the conv output (keeps
    # its memory format; torch.compile fuses the chain into one kernel)
    offset = bias.to(dt).reshape(1, -1, 1, 1) * gain
    if noise is not None:
        offset = offset + noise.to(dt) * gain
    y = y.mul_(scale.to(dt).reshape(b, -1, 1, 1)).add_(offset)
    return act_inplace(y, activation, clamp)

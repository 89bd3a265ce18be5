"""FIR resampling (upfirdn2d) and resampling convolutions in plain PyTorch (docs/next3d.md §6.2-6.3).

StyleGAN2 resamples with the 4x4 binomial filter outer([1,3,3,1])/64 and fuses it with 3x3
convolutions using a specific padding recipe. The recipe decides where every output pixel lands,
so it must be reproduced exactly for the released weights to produce their images; these are the
reference (non-CUDA) versions, which also run on GPUs at full speed through cuDNN convolutions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Taps of the separable binomial resampling filter.
BINOMIAL_TAPS = (1.0, 3.0, 3.0, 1.0)


def binomial_filter(device: torch.device | str | None = None) -> torch.Tensor:
    """The (4, 4) resampling filter, normalised to sum 1 (stored as ``resample_filter`` buffers)."""
    t = torch.tensor(BINOMIAL_TAPS, dtype=torch.float32, device=device)
    f = torch.outer(t, t)
    return f / f.sum()


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative = crop), FIR-filter, downsample.

    x: (B, C, H, W); f: (fh, fw) 2-D filter, applied as a true convolution and scaled by ``gain``;
    pad: (x0, x1, y0, y1) in pixels of the upsampled image.
    """
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(b, c, h * up, w * up)
    x0, x1, y0, y1 = pad
    x = F.pad(x, (max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)))
    x = x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]
    weight = (f * gain).to(x.dtype).flip([0, 1])  # correlation with a flipped filter = convolution
    weight = weight[None, None].repeat(c, 1, 1, 1)
    x = F.conv2d(x, weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """x2 FIR upsampling (pads (2,1,2,1), gain up² for a 2-D filter): (B,C,H,W) -> (B,C,2H,2W)."""
    fw = f.shape[-1]
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d(x, f, up=up, pad=(p0, p1, p0, p1), gain=up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    """/2 FIR downsampling (pads (1,1,1,1)): (B,C,H,W) -> (B,C,H/2,W/2)."""
    fw = f.shape[-1]
    p0, p1 = (fw - down + 1) // 2, (fw - down) // 2
    return upfirdn2d(x, f, down=down, pad=(p0, p1, p0, p1))


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                    down: int = 1, padding: int = 0, groups: int = 1) -> torch.Tensor:
    """Correlation with ``w`` (O, I/groups, k, k), optionally fused with x2 up- or downsampling.

    up=2: stride-2 transposed conv with the (unflipped) weight, then the FIR with pads
    ``padding + (fw+1)//2 - (k-1)`` / ``padding + (fw-2)//2 - (k-2)`` and gain 4 (docs/next3d.md §6.3).
    down=2: FIR with pads ``padding + 1`` each side, then a stride-2 correlation.
    """
    kh, kw = w.shape[-2:]
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample: up and down together are not used by Next3D")
    assert f is not None, "resampling needs the FIR filter"
    fw = f.shape[-1]
    if down > 1:
        p0 = padding + (fw - down + 1) // 2
        p1 = padding + (fw - down) // 2
        if kw == 1 and kh == 1:  # filter+subsample, then the 1x1 conv
            x = upfirdn2d(x, f, down=down, pad=(p0, p1, p0, p1))
            return F.conv2d(x, w, groups=groups)
        x = upfirdn2d(x, f, pad=(p0, p1, p0, p1))
        return F.conv2d(x, w, stride=down, groups=groups)
    # up > 1: transposed conv needs the weight as (I, O/groups, k, k), per group.
    p0 = padding + (fw + up - 1) // 2 - (kw - 1)
    p1 = padding + (fw - up) // 2 - (kw - up)
    out_ch, in_per_group = w.shape[0], w.shape[1]
    wt = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
    wt = wt.reshape(groups * in_per_group, out_ch // groups, kh, kw)
    pt = max(min(-p0, -p1), 0)
    x = F.conv_transpose2d(x, wt, stride=up, padding=pt, groups=groups)
    return upfirdn2d(x, f, pad=(p0 + pt, p1 + pt, p0 + pt, p1 + pt), gain=up * up)

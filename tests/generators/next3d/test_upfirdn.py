"""FIR resampling and resampling convolutions against direct scipy convolutions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from sfray.generators.next3d.upfirdn import binomial_filter, conv2d_resample, downsample2d, upfirdn2d, upsample2d

F4 = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0


def zero_insert(x: np.ndarray, up: int) -> np.ndarray:
    """(H, W) -> (H*up, W*up) with the samples at multiples of up (trailing zeros kept)."""
    out = np.zeros((x.shape[0] * up, x.shape[1] * up))
    out[::up, ::up] = x
    return out


def ref_upfirdn(x: np.ndarray, f: np.ndarray, up: int, down: int, pad: tuple[int, int, int, int], gain: float) -> np.ndarray:
    """Definition: zero-insert, pad (x0,x1,y0,y1; negative crops), true 2-D convolution (valid), subsample."""
    u = zero_insert(x, up)
    x0, x1, y0, y1 = pad
    u = np.pad(u, ((max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0))))
    u = u[max(-y0, 0): u.shape[0] - max(-y1, 0), max(-x0, 0): u.shape[1] - max(-x1, 0)]
    y = signal.convolve2d(u, f * gain, mode="valid")
    return y[::down, ::down]


@pytest.mark.parametrize("up,down,pad,gain", [
    (1, 1, (1, 2, 0, 1), 1.0), (2, 1, (2, 1, 2, 1), 4.0), (1, 2, (1, 1, 1, 1), 1.0), (2, 1, (-1, 0, 1, -1), 2.0),
])
def test_upfirdn2d_matches_scipy(up, down, pad, gain):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 8))
    f = rng.random((4, 3))  # asymmetric: catches a missing flip
    got = upfirdn2d(torch.from_numpy(x), torch.from_numpy(f), up=up, down=down, pad=pad, gain=gain).numpy()
    for b in range(2):
        for c in range(3):
            np.testing.assert_allclose(got[b, c], ref_upfirdn(x[b, c], f, up, down, pad, gain), atol=1e-12)


def test_binomial_filter_and_resampling_shapes():
    f = binomial_filter()
    np.testing.assert_allclose(f.numpy(), F4, atol=1e-7)
    x = torch.ones(1, 2, 8, 8)
    up = upsample2d(x, f)
    down = downsample2d(x, f)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    # gain keeps a constant image constant away from the zero-padded border
    np.testing.assert_allclose(up[..., 2:-2, 2:-2].numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(down[..., 1:-1, 1:-1].numpy(), 1.0, atol=1e-6)


def test_conv2d_upsample_matches_transposed_conv_then_fir():
    """docs/next3d.md §6.3: stride-2 transposed conv with the unflipped weight (2H+1) then FIR pads 1, gain 4."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 5, 6))
    w = rng.standard_normal((3, 2, 3, 3))  # (O, I, k, k) correlation weight
    got = conv2d_resample(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(F4), up=2, padding=1).numpy()
    assert got.shape == (1, 3, 10, 12)
    for o in range(3):
        acc = 0
        for i in range(2):
            # transposed conv = full convolution of the zero-inserted input with the kernel (no flip)
            u = np.zeros((2 * 5 - 1, 2 * 6 - 1))
            u[::2, ::2] = x[0, i]
            acc = acc + signal.convolve2d(u, w[o, i], mode="full")  # (2H+1, 2W+1)
        ref = signal.convolve2d(np.pad(acc, 1), F4 * 4, mode="valid")
        np.testing.assert_allclose(got[0, o], ref, atol=1e-10)


def test_conv2d_downsample_matches_fir_then_strided_correlation():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 8, 6))
    w = rng.standard_normal((3, 2, 3, 3))
    got = conv2d_resample(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(F4), down=2, padding=1).numpy()
    assert got.shape == (1, 3, 4, 3)
    for o in range(3):
        acc = 0
        for i in range(2):
            blurred = signal.convolve2d(np.pad(x[0, i], 2), F4, mode="valid")  # pads (2,2,2,2): H+1
            acc = acc + signal.correlate2d(blurred, w[o, i], mode="valid")[::2, ::2]
        np.testing.assert_allclose(got[0, o], acc, atol=1e-10)


def test_grouped_upsampling_conv_equals_per_group():
    rng = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 5, 5, generator=rng, dtype=torch.float64)
    w = torch.randn(6, 2, 3, 3, generator=rng, dtype=torch.float64)
    f = torch.from_numpy(F4)
    got = conv2d_resample(x, w, f, up=2, padding=1, groups=2)
    ref = torch.cat([conv2d_resample(x[:, :2], w[:3], f, up=2, padding=1),
                     conv2d_resample(x[:, 2:], w[3:], f, up=2, padding=1)], dim=1)
    torch.testing.assert_close(got, ref)
